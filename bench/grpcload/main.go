// Command grpcload makes N unary CreateResponse calls (or calls for a time budget) at concurrency C
// over one gRPC channel, as a grpc client normally does, and prints one JSON line with the same
// fields as bench/loadgen: counts, the first error, wall time, rps, latency percentiles and its own
// CPU time. It is the gRPC half of the bench's saturated lines: light enough (Go, one P) that one
// gateway worker, not the load generator, is what runs out of CPU.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/responses-gateway/responses-gateway/clients/go/gateway"
	pb "github.com/responses-gateway/responses-gateway/clients/go/responsesgatewayv1"

	"responsesgateway/bench/loadgen/phase"
)

type config struct {
	phase.Common
	target       string
	model        string
	instructions string
	input        string
	conns        int
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("grpcload", flag.ContinueOnError)
	fs.StringVar(&c.target, "target", "", "the gateway's gRPC address, host:port (required)")
	fs.StringVar(&c.model, "model", "bench-gpt", "the request's model")
	// The defaults are the bench's request body (bench/__main__.py `_body`), so REST and gRPC carry
	// the same request.
	fs.StringVar(&c.instructions, "instructions", "You are a terse assistant.", "the request's instructions")
	fs.StringVar(&c.input, "input", "Say hello and offer help in one short sentence.", "the one user message")
	fs.IntVar(&c.conns, "conns", 1, "channels (each its own HTTP/2 connection); call i uses channel i mod conns")
	c.Register(fs, "calls")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case c.target == "":
		return c, fmt.Errorf("-target is required")
	case c.conns < 1:
		return c, fmt.Errorf("-conns must be at least 1")
	}
	return c, c.Check()
}

func request(c config) *pb.CreateResponseRequest {
	return &pb.CreateResponseRequest{
		Model:        proto.String(c.model),
		Instructions: proto.String(c.instructions),
		Input:        gateway.ItemsInput(gateway.UserMessage(c.input)),
		Temperature:  proto.Float64(1.0),
	}
}

// upperSnake turns a Go code name (NotFound) into the canonical one of the gRPC spec (NOT_FOUND).
func upperSnake(name string) string {
	var b strings.Builder
	for i, r := range name {
		if i > 0 && unicode.IsUpper(r) && unicode.IsLower(rune(name[i-1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// describe names a failed call by its gRPC status and, when the gateway sent one, its ErrorInfo
// reason: "NOT_FOUND MODEL_NOT_FOUND: ...".
func describe(err error) string {
	st := status.Convert(err)
	reason := ""
	if gerr, ok := gateway.AsError(err); ok && gerr.Reason != "" {
		reason = " " + gerr.Reason
	}
	text := fmt.Sprintf("%s%s: %s", upperSnake(st.Code().String()), reason, st.Message())
	return text[:min(len(text), 300)]
}

func call(c config, client pb.ResponsesServiceClient, req *pb.CreateResponseRequest) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	resp, err := client.CreateResponse(ctx, req)
	if err != nil {
		return fmt.Errorf("%s", describe(err))
	}
	if s := resp.GetStatus(); s != pb.ResponseStatus_RESPONSE_STATUS_COMPLETED {
		return fmt.Errorf("response %q has status %s", resp.GetId(), s)
	}
	return nil
}

func main() {
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpcload:", err)
		os.Exit(2)
	}
	runtime.GOMAXPROCS(c.Procs)
	clients := make([]pb.ResponsesServiceClient, c.conns)
	for i := range clients {
		// Plaintext, no API key: the bench's gateway listens on loopback without auth. Each
		// NewClient is a channel of its own, so -conns opens that many connections.
		conn, err := grpc.NewClient(c.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fmt.Fprintln(os.Stderr, "grpcload:", err)
			os.Exit(2)
		}
		defer conn.Close()
		clients[i] = pb.NewResponsesServiceClient(conn)
	}
	req := request(c) // shared: the stubs only read it
	// The cue: the caller reads the other processes' CPU counters when the timed phase starts.
	cue := func() { fmt.Fprintln(os.Stderr, "grpcload: timed phase starts") }
	result := phase.Timed(c.Concurrency, c.Warmup, c.Requests, c.Budget, cue, func(i int) error {
		return call(c, clients[i%len(clients)], req)
	})
	line, err := json.Marshal(result)
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpcload:", err)
		os.Exit(1)
	}
	fmt.Println(string(line))
}
