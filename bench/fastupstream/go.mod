module responsesgateway/bench/fastupstream

// The oldest Go the code needs (math/rand/v2); any newer toolchain builds it without downloading one.
go 1.22
