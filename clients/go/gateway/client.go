// Package gateway is a thin, idiomatic client of the Responses Gateway, the gRPC service that
// serves the OpenAI Responses API (proto package responses_gateway.v1).
//
// The messages are the generated ones in package responsesgatewayv1; this package adds
// connection setup (TLS or plaintext, API key), a [Stream] with the usual io.EOF Recv loop and
// the terminal response, and a typed [*Error] carrying the google.rpc.ErrorInfo the gateway sends.
//
//	client, err := gateway.Dial(ctx, "localhost:50051", gateway.WithAPIKey(key), gateway.WithInsecure())
//	if err != nil { ... }
//	defer client.Close()
//	resp, err := client.Create(ctx, &pb.CreateResponseRequest{
//		Model: proto.String("gpt-4.1"),
//		Input: gateway.TextInput("Say hi"),
//	})
//
// Every RPC of the service is also reachable with the generated stubs of [Client.Responses] and
// [Client.Models], which share the client's connection and API key.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/responses-gateway/responses-gateway/clients/go/responsesgatewayv1"
)

// Option configures [Dial].
type Option func(*options)

type options struct {
	apiKey      string
	tlsConfig   *tls.Config
	insecure    bool
	lazy        bool
	dialOptions []grpc.DialOption
}

// WithAPIKey sends "authorization: Bearer <key>" with every call.
func WithAPIKey(key string) Option { return func(o *options) { o.apiKey = key } }

// WithTLS connects over TLS with the given configuration (nil: the system roots). TLS with the
// system roots is also the default when neither WithTLS nor WithInsecure is given.
func WithTLS(config *tls.Config) Option {
	return func(o *options) {
		if config == nil {
			config = &tls.Config{}
		}
		o.tlsConfig, o.insecure = config, false
	}
}

// WithInsecure connects in plaintext (local development, or behind a TLS-terminating proxy).
func WithInsecure() Option { return func(o *options) { o.insecure, o.tlsConfig = true, nil } }

// WithLazyConnect makes Dial return at once instead of waiting for the connection: the first
// call connects (and reports an unreachable gateway as Unavailable).
func WithLazyConnect() Option { return func(o *options) { o.lazy = true } }

// WithDialOptions adds raw gRPC dial options (interceptors, keepalive, message sizes, ...). They
// come after the ones Dial derives from the other options, so they win where they overlap.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOptions = append(o.dialOptions, opts...) }
}

// Client is a connection to a Responses Gateway. It is safe for concurrent use; Close it when done.
type Client struct {
	conn      *grpc.ClientConn
	responses pb.ResponsesServiceClient
	models    pb.ModelsServiceClient
}

// Dial connects to the gateway at target ("host:port", or any gRPC target such as
// "dns:///gateway.example.com:443"). Unless WithLazyConnect is given, it waits until the
// connection is ready or ctx is done, so give ctx a deadline: an unreachable gateway is then
// reported at once instead of on the first call.
func Dial(ctx context.Context, target string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	creds := insecure.NewCredentials()
	if !o.insecure {
		config := o.tlsConfig
		if config == nil {
			config = &tls.Config{}
		}
		creds = credentials.NewTLS(config)
	}
	dialOptions := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if o.apiKey != "" {
		dialOptions = append(dialOptions,
			grpc.WithChainUnaryInterceptor(unaryAuth("Bearer "+o.apiKey)),
			grpc.WithChainStreamInterceptor(streamAuth("Bearer "+o.apiKey)))
	}
	dialOptions = append(dialOptions, o.dialOptions...)
	conn, err := grpc.NewClient(target, dialOptions...)
	if err != nil {
		return nil, fmt.Errorf("gateway: dial %s: %w", target, err)
	}
	if !o.lazy {
		if err := waitReady(ctx, conn); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("gateway: dial %s: %w", target, err)
		}
	}
	return &Client{conn: conn, responses: pb.NewResponsesServiceClient(conn), models: pb.NewModelsServiceClient(conn)}, nil
}

// waitReady connects conn and waits for it to be READY (gRPC keeps retrying with backoff
// after a failure) or for ctx to be done.
func waitReady(ctx context.Context, conn *grpc.ClientConn) error {
	conn.Connect()
	failed := false
	for {
		state := conn.GetState()
		switch state {
		case connectivity.Ready:
			return nil
		case connectivity.TransientFailure:
			failed = true
		case connectivity.Shutdown:
			return errors.New("connection closed")
		case connectivity.Idle:
			conn.Connect()
		}
		if !conn.WaitForStateChange(ctx, state) {
			if failed {
				return fmt.Errorf("not connected (last state TRANSIENT_FAILURE): %w", ctx.Err())
			}
			return ctx.Err()
		}
	}
}

func withAuth(ctx context.Context, value string) context.Context {
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get("authorization")) > 0 {
		return ctx // an explicit per-call authorization wins
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", value)
}

func unaryAuth(value string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(withAuth(ctx, value), method, req, reply, cc, opts...)
	}
}

func streamAuth(value string) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
		streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(withAuth(ctx, value), desc, cc, method, opts...)
	}
}

// Close closes the connection; calls in flight fail with Canceled.
func (c *Client) Close() error { return c.conn.Close() }

// Conn is the underlying gRPC connection.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Responses is the generated ResponsesService stub on the client's connection (errors it returns
// are plain gRPC status errors: convert them with [AsError]).
func (c *Client) Responses() pb.ResponsesServiceClient { return c.responses }

// Models is the generated ModelsService stub on the client's connection.
func (c *Client) Models() pb.ModelsServiceClient { return c.models }

// Create creates a response (POST /v1/responses) and waits for it.
func (c *Client) Create(ctx context.Context, req *pb.CreateResponseRequest, opts ...grpc.CallOption) (*pb.Response, error) {
	resp, err := c.responses.CreateResponse(ctx, req, opts...)
	return resp, convert(err)
}

// Stream creates a response and streams its events (POST /v1/responses with stream: true).
// Errors of the call itself (authentication, unknown model, ...) come from the first Recv.
// Read it to io.EOF, or Close it to stop early.
func (c *Client) Stream(ctx context.Context, req *pb.CreateResponseRequest, opts ...grpc.CallOption) (*Stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	call, err := c.responses.StreamResponse(ctx, req, opts...)
	if err != nil {
		cancel()
		return nil, convert(err)
	}
	return &Stream{call: call, cancel: cancel}, nil
}

// StreamRetrieve replays the events of a background response after sequence number
// startingAfter (-1: from the start).
func (c *Client) StreamRetrieve(ctx context.Context, responseID string, startingAfter int64, opts ...grpc.CallOption) (*Stream, error) {
	req := &pb.GetResponseRequest{ResponseId: responseID}
	if startingAfter >= 0 {
		req.StartingAfter = &startingAfter
	}
	ctx, cancel := context.WithCancel(ctx)
	call, err := c.responses.StreamGetResponse(ctx, req, opts...)
	if err != nil {
		cancel()
		return nil, convert(err)
	}
	return &Stream{call: call, cancel: cancel}, nil
}

// Retrieve gets a stored response by id (GET /v1/responses/{id}).
func (c *Client) Retrieve(ctx context.Context, responseID string, opts ...grpc.CallOption) (*pb.Response, error) {
	resp, err := c.responses.GetResponse(ctx, &pb.GetResponseRequest{ResponseId: responseID}, opts...)
	return resp, convert(err)
}

// Delete deletes a stored response (DELETE /v1/responses/{id}).
func (c *Client) Delete(ctx context.Context, responseID string, opts ...grpc.CallOption) (*pb.DeleteResponseResponse, error) {
	resp, err := c.responses.DeleteResponse(ctx, &pb.DeleteResponseRequest{ResponseId: responseID}, opts...)
	return resp, convert(err)
}

// Cancel cancels a background response (POST /v1/responses/{id}/cancel).
func (c *Client) Cancel(ctx context.Context, responseID string, opts ...grpc.CallOption) (*pb.Response, error) {
	resp, err := c.responses.CancelResponse(ctx, &pb.CancelResponseRequest{ResponseId: responseID}, opts...)
	return resp, convert(err)
}

// InputItems lists a page of a response's input items (GET /v1/responses/{id}/input_items);
// req.ResponseId is required, After/Limit/Order page through them.
func (c *Client) InputItems(ctx context.Context, req *pb.ListInputItemsRequest, opts ...grpc.CallOption) (*pb.ListInputItemsResponse, error) {
	resp, err := c.responses.ListInputItems(ctx, req, opts...)
	return resp, convert(err)
}

// CountInputTokens counts the input tokens of a would-be request (POST /v1/responses/input_tokens).
func (c *Client) CountInputTokens(ctx context.Context, req *pb.CountInputTokensRequest, opts ...grpc.CallOption) (*pb.CountInputTokensResponse, error) {
	resp, err := c.responses.CountInputTokens(ctx, req, opts...)
	return resp, convert(err)
}

// Compact compacts a conversation (POST /v1/responses/compact).
func (c *Client) Compact(ctx context.Context, req *pb.CompactResponseRequest, opts ...grpc.CallOption) (*pb.CompactResponseResponse, error) {
	resp, err := c.responses.CompactResponse(ctx, req, opts...)
	return resp, convert(err)
}

// ListModels lists the models the gateway routes to (GET /v1/models).
func (c *Client) ListModels(ctx context.Context, opts ...grpc.CallOption) (*pb.ListModelsResponse, error) {
	resp, err := c.models.ListModels(ctx, &pb.ListModelsRequest{}, opts...)
	return resp, convert(err)
}

// TextInput is the input of a request given as a plain string (one user message).
func TextInput(text string) *pb.Input { return &pb.Input{Kind: &pb.Input_Text{Text: text}} }

// ItemsInput is the input of a request given as a list of items.
func ItemsInput(items ...*pb.Item) *pb.Input {
	return &pb.Input{Kind: &pb.Input_Items{Items: &pb.ItemList{Items: items}}}
}

// UserMessage is an input message item with the user role and text content.
func UserMessage(text string) *pb.Item {
	return &pb.Item{Kind: &pb.Item_Message{Message: &pb.Message{
		Role:    pb.MessageRole_MESSAGE_ROLE_USER,
		Content: &pb.Content{Kind: &pb.Content_Text{Text: text}},
	}}}
}

// OutputText is the concatenated output_text of a response's output messages (the OpenAI SDKs'
// `output_text` convenience): the response's own output_text field when set.
func OutputText(resp *pb.Response) string {
	if resp == nil {
		return ""
	}
	if resp.OutputText != nil {
		return resp.GetOutputText()
	}
	var b strings.Builder
	for _, item := range resp.GetOutput() {
		content := item.GetMessage().GetContent()
		if content == nil {
			continue
		}
		if text, ok := content.GetKind().(*pb.Content_Text); ok {
			b.WriteString(text.Text)
			continue
		}
		for _, part := range content.GetParts().GetParts() {
			if out := part.GetOutputText(); out != nil {
				b.WriteString(out.GetText())
			}
		}
	}
	return b.String()
}
