module responsesgateway/bench/grpcload

// The client module's go line (set by grpc-go 1.85): a dependency's go line is a floor for ours.
go 1.26.0

require (
	github.com/responses-gateway/responses-gateway/clients/go v0.0.0
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
	responsesgateway/bench/loadgen v0.0.0
)

require (
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
)

// The client module is not published: build against the checkout this program lives in.
replace github.com/responses-gateway/responses-gateway/clients/go => ../../clients/go

// What the REST generator and this one share (bench/loadgen/phase): the same checkout.
replace responsesgateway/bench/loadgen => ../loadgen
