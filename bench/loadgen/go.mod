module responsesgateway/bench/loadgen

// The oldest Go the code needs (range over int); any newer toolchain builds it without downloading one.
go 1.22
