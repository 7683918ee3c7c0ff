// Command newproject is a program outside this module that uses the Go client the way another
// project does: its own go.mod requires github.com/responses-gateway/responses-gateway/clients/go
// and a replace directive points it at a checkout (see ../../README.md, "Use it from your project").
//
//	GATEWAY_ADDR=localhost:50051 GATEWAY_MODEL=mock go run .
//
// GATEWAY_KEY is sent as the API key when set. It creates a response, streams one, and shows a
// typed error; it exits non-zero if any step fails.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/responses-gateway/responses-gateway/clients/go/gateway"
	pb "github.com/responses-gateway/responses-gateway/clients/go/responsesgatewayv1"
)

func getenv(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func main() {
	addr := getenv("GATEWAY_ADDR", "localhost:50051")
	model := getenv("GATEWAY_MODEL", "mock")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	opts := []gateway.Option{gateway.WithInsecure()}
	if key := os.Getenv("GATEWAY_KEY"); key != "" {
		opts = append(opts, gateway.WithAPIKey(key))
	}
	// Dial waits until the connection is ready: bound that wait so a wrong address fails fast.
	dialCtx, cancelDial := context.WithTimeout(ctx, 10*time.Second)
	defer cancelDial()
	client, err := gateway.Dial(dialCtx, addr, opts...)
	if err != nil {
		log.Fatalf("dial %s: %v", addr, err)
	}
	defer client.Close()

	resp, err := client.Create(ctx, &pb.CreateResponseRequest{
		Model: proto.String(model),
		Input: gateway.TextInput("Say hello"),
	})
	if err != nil {
		log.Fatalf("create: %v", err)
	}
	fmt.Println("created:", resp.GetId(), resp.GetStatus(), gateway.OutputText(resp))

	stream, err := client.Stream(ctx, &pb.CreateResponseRequest{
		Model: proto.String(model),
		Input: gateway.TextInput("Say hello"),
	})
	if err != nil {
		log.Fatalf("stream: %v", err)
	}
	defer stream.Close()
	fmt.Print("streamed: ")
	for {
		event, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatalf("stream: %v", err)
		}
		if delta, ok := gateway.TextDelta(event); ok {
			fmt.Print(delta)
		}
	}
	final, err := stream.FinalResponse()
	if err != nil {
		log.Fatalf("stream: %v", err)
	}
	fmt.Println("\nfinal:", final.GetId(), final.GetStatus())

	_, err = client.Create(ctx, &pb.CreateResponseRequest{
		Model: proto.String("no-such-model"),
		Input: gateway.TextInput("Say hello"),
	})
	var gerr *gateway.Error
	if !errors.As(err, &gerr) {
		log.Fatalf("unknown model: got %v, want a *gateway.Error", err)
	}
	fmt.Println("error:", gerr.Code, gerr.Reason, gerr.Param())
}
