package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/responses-gateway/responses-gateway/clients/go/gateway"
	pb "github.com/responses-gateway/responses-gateway/clients/go/responsesgatewayv1"
)

func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	client, err := gateway.Dial(ctx, "localhost:50051", gateway.WithAPIKey("sk-gw"), gateway.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// One-shot.
	resp, err := client.Create(ctx, &pb.CreateResponseRequest{
		Model: proto.String("gpt-4.1"),
		Input: gateway.TextInput("Say hi"),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.GetId(), gateway.OutputText(resp))

	// Streaming: print the text as it arrives.
	stream, err := client.Stream(ctx, &pb.CreateResponseRequest{
		Model: proto.String("gpt-4.1"),
		Input: gateway.TextInput("Tell me a story"),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()
	for {
		event, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		if delta, ok := gateway.TextDelta(event); ok {
			fmt.Print(delta)
		}
	}
	final, err := stream.FinalResponse()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("\nusage:", final.GetUsage().GetTotalTokens())
}

func ExampleError() {
	ctx := context.Background()
	client, err := gateway.Dial(ctx, "localhost:50051", gateway.WithAPIKey("sk-gw"), gateway.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	_, err = client.Create(ctx, &pb.CreateResponseRequest{
		Model: proto.String("no-such-model"),
		Input: gateway.TextInput("Say hi"),
	})
	var gerr *gateway.Error
	if errors.As(err, &gerr) {
		switch {
		case gerr.Reason == "MODEL_NOT_FOUND":
			fmt.Println("unknown model:", gerr.Message, "param:", gerr.Param())
		case gerr.Code == codes.ResourceExhausted:
			fmt.Println("rate limited; retry after", gerr.RetryAfter)
		case gerr.Code == codes.Unauthenticated:
			fmt.Println("bad API key")
		default:
			fmt.Println(gerr)
		}
	}
}
