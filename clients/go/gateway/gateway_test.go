package gateway_test

// Tests against a live gateway. Env:
//   GATEWAY_ADDR   host:port of the gateway's gRPC port (plaintext); the tests skip when unset
//   GATEWAY_KEY    an API key the gateway accepts
//   GATEWAY_MODEL  a model it serves (default gpt-4.1)
//   GATEWAY_RATE_LIMITED_MODEL  optional: a model whose upstream always answers 429
// tests/clients/test_go_client.py runs them against a real gateway and a fake OpenAI upstream.

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/responses-gateway/responses-gateway/clients/go/gateway"
	pb "github.com/responses-gateway/responses-gateway/clients/go/responsesgatewayv1"
)

func env(t *testing.T) (addr, key, model string) {
	t.Helper()
	addr, key = os.Getenv("GATEWAY_ADDR"), os.Getenv("GATEWAY_KEY")
	if addr == "" {
		t.Skip("GATEWAY_ADDR is not set (no live gateway to test against)")
	}
	model = os.Getenv("GATEWAY_MODEL")
	if model == "" {
		model = "gpt-4.1"
	}
	return addr, key, model
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, ctx context.Context, addr string, opts ...gateway.Option) *gateway.Client {
	t.Helper()
	client, err := gateway.Dial(ctx, addr, append([]gateway.Option{gateway.WithInsecure()}, opts...)...)
	if err != nil {
		t.Fatalf("Dial(%s): %v", addr, err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// messageText is the text of an input message item: the gateway stores a string content as one
// input_text part.
func messageText(item *pb.Item) string {
	content := item.GetMessage().GetContent()
	if text, ok := content.GetKind().(*pb.Content_Text); ok {
		return text.Text
	}
	var b strings.Builder
	for _, part := range content.GetParts().GetParts() {
		b.WriteString(part.GetInputText().GetText())
	}
	return b.String()
}

func request(model, input string) *pb.CreateResponseRequest {
	return &pb.CreateResponseRequest{Model: proto.String(model), Input: gateway.TextInput(input)}
}

// wantError checks err is a *gateway.Error with code and reason.
func wantError(t *testing.T, err error, code codes.Code, reason string) *gateway.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s %s", code, reason)
	}
	var gerr *gateway.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("error %v (%T) is not a *gateway.Error", err, err)
	}
	if gerr.Code != code || gerr.Reason != reason {
		t.Fatalf("got %s %q (%v), want %s %q", gerr.Code, gerr.Reason, gerr, code, reason)
	}
	if reason != "" && gerr.Domain != gateway.ErrorDomain {
		t.Errorf("domain = %q, want %q", gerr.Domain, gateway.ErrorDomain)
	}
	if status.Code(err) != code {
		t.Errorf("status.Code(err) = %s, want %s", status.Code(err), code)
	}
	return gerr
}

func TestCreateRetrieveInputItemsDelete(t *testing.T) {
	addr, key, model := env(t)
	ctx := testContext(t)
	client := dial(t, ctx, addr, gateway.WithAPIKey(key))

	resp, err := client.Create(ctx, request(model, "Say hi"))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !strings.HasPrefix(resp.GetId(), "resp_") || resp.GetStatus() != pb.ResponseStatus_RESPONSE_STATUS_COMPLETED {
		t.Fatalf("Create: id %q status %s", resp.GetId(), resp.GetStatus())
	}
	text := gateway.OutputText(resp)
	if text == "" {
		t.Fatal("Create: empty output text")
	}

	got, err := client.Retrieve(ctx, resp.GetId())
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	if got.GetId() != resp.GetId() || gateway.OutputText(got) != text {
		t.Fatalf("Retrieve: got %q %q, want %q %q", got.GetId(), gateway.OutputText(got), resp.GetId(), text)
	}

	page, err := client.InputItems(ctx, &pb.ListInputItemsRequest{
		ResponseId: resp.GetId(), Order: pb.ListOrder_LIST_ORDER_ASC.Enum(), Limit: proto.Int64(10),
	})
	if err != nil {
		t.Fatalf("InputItems: %v", err)
	}
	if n := len(page.GetData()); n != 1 || messageText(page.GetData()[0]) != "Say hi" {
		t.Fatalf("InputItems: got %d items: %v", n, page.GetData())
	}

	deleted, err := client.Delete(ctx, resp.GetId())
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if !deleted.GetDeleted() || deleted.GetId() != resp.GetId() {
		t.Fatalf("Delete: %v", deleted)
	}
	_, err = client.Retrieve(ctx, resp.GetId())
	wantError(t, err, codes.NotFound, "RESPONSE_NOT_FOUND")
}

func TestCreateFromItems(t *testing.T) {
	addr, key, model := env(t)
	ctx := testContext(t)
	client := dial(t, ctx, addr, gateway.WithAPIKey(key))

	resp, err := client.Create(ctx, &pb.CreateResponseRequest{
		Model: proto.String(model),
		Input: gateway.ItemsInput(gateway.UserMessage("one"), gateway.UserMessage("two")),
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	page, err := client.InputItems(ctx, &pb.ListInputItemsRequest{
		ResponseId: resp.GetId(), Order: pb.ListOrder_LIST_ORDER_ASC.Enum(),
	})
	if err != nil {
		t.Fatalf("InputItems: %v", err)
	}
	var texts []string
	for _, item := range page.GetData() {
		texts = append(texts, messageText(item))
	}
	if !slices.Equal(texts, []string{"one", "two"}) {
		t.Fatalf("InputItems: got %q", texts)
	}
}

func TestStream(t *testing.T) {
	addr, key, model := env(t)
	ctx := testContext(t)
	client := dial(t, ctx, addr, gateway.WithAPIKey(key))

	stream, err := client.Stream(ctx, request(model, "Say hi"))
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	defer stream.Close()
	var (
		events []*pb.ResponseStreamEvent
		deltas strings.Builder
	)
	for {
		event, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Recv after %d events: %v", len(events), err)
		}
		events = append(events, event)
		if delta, ok := gateway.TextDelta(event); ok {
			deltas.WriteString(delta)
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Errorf("Recv after the end: %v, want io.EOF", err)
	}
	if len(events) < 3 {
		t.Fatalf("got %d events", len(events))
	}
	for i, event := range events {
		if event.GetSequenceNumber() != int64(i) {
			t.Fatalf("event %d (%T) has sequence number %d", i, event.GetKind(), event.GetSequenceNumber())
		}
	}
	if events[0].GetResponseCreated() == nil {
		t.Errorf("first event is %T, want response.created", events[0].GetKind())
	}
	if events[len(events)-1].GetResponseCompleted() == nil {
		t.Errorf("last event is %T, want response.completed", events[len(events)-1].GetKind())
	}
	// Output events are properly nested: item added < part added < deltas < text done < part done < item done.
	order := []func(*pb.ResponseStreamEvent) bool{
		func(e *pb.ResponseStreamEvent) bool { return e.GetResponseOutputItemAdded() != nil },
		func(e *pb.ResponseStreamEvent) bool { return e.GetResponseContentPartAdded() != nil },
		func(e *pb.ResponseStreamEvent) bool { return e.GetResponseOutputTextDelta() != nil },
		func(e *pb.ResponseStreamEvent) bool { return e.GetResponseOutputTextDone() != nil },
		func(e *pb.ResponseStreamEvent) bool { return e.GetResponseContentPartDone() != nil },
		func(e *pb.ResponseStreamEvent) bool { return e.GetResponseOutputItemDone() != nil },
	}
	last := -1
	for step, is := range order {
		first := slices.IndexFunc(events, is)
		if first < 0 || first < last {
			t.Fatalf("event kind #%d of the output sequence missing or out of order (index %d after %d)", step, first, last)
		}
		last = first
	}

	final, err := stream.FinalResponse()
	if err != nil {
		t.Fatalf("FinalResponse: %v", err)
	}
	if final.GetStatus() != pb.ResponseStatus_RESPONSE_STATUS_COMPLETED {
		t.Fatalf("FinalResponse: status %s", final.GetStatus())
	}
	if text := gateway.OutputText(final); text == "" || text != deltas.String() {
		t.Fatalf("FinalResponse text %q, deltas %q", text, deltas.String())
	}
	if done := events[len(events)-2]; done.GetResponseOutputItemDone() == nil {
		t.Errorf("event before the last is %T, want response.output_item.done", done.GetKind())
	}
	if got, err := client.Retrieve(ctx, final.GetId()); err != nil || got.GetId() != final.GetId() {
		t.Fatalf("Retrieve(streamed): %v, %v", got, err)
	}

	// FinalResponse alone drains the stream.
	stream2, err := client.Stream(ctx, request(model, "Say hi"))
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	final2, err := stream2.FinalResponse()
	if err != nil || gateway.OutputText(final2) != deltas.String() {
		t.Fatalf("FinalResponse (undrained): %v, %v", final2, err)
	}
}

func TestStreamClose(t *testing.T) {
	addr, key, model := env(t)
	ctx := testContext(t)
	client := dial(t, ctx, addr, gateway.WithAPIKey(key))

	stream, err := client.Stream(ctx, request(model, "Say hi"))
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("Recv: %v", err)
	}
	_ = stream.Close()
	for {
		_, err := stream.Recv()
		if err == nil {
			continue // events already received before the cancellation
		}
		if err != io.EOF && status.Code(err) != codes.Canceled {
			t.Fatalf("Recv after Close: %v", err)
		}
		break
	}
	_ = stream.Close() // idempotent
	// The connection is fine afterwards.
	if _, err := client.Create(ctx, request(model, "again")); err != nil {
		t.Fatalf("Create after a closed stream: %v", err)
	}
}

func TestBackgroundReplayAndCancel(t *testing.T) {
	addr, key, model := env(t)
	ctx := testContext(t)
	client := dial(t, ctx, addr, gateway.WithAPIKey(key))

	req := request(model, "Say hi")
	req.Background = proto.Bool(true)
	background, err := client.Create(ctx, req)
	if err != nil {
		t.Fatalf("Create(background): %v", err)
	}
	replay, err := client.StreamRetrieve(ctx, background.GetId(), 0)
	if err != nil {
		t.Fatalf("StreamRetrieve: %v", err)
	}
	final, err := replay.FinalResponse()
	if err != nil {
		t.Fatalf("StreamRetrieve FinalResponse: %v", err)
	}
	if final.GetId() != background.GetId() || gateway.OutputText(final) == "" {
		t.Fatalf("replayed final response: %v", final)
	}
	cancelled, err := client.Cancel(ctx, background.GetId())
	if err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if cancelled.GetId() != background.GetId() {
		t.Fatalf("Cancel: id %q", cancelled.GetId())
	}
}

func TestListModelsCountTokensCompact(t *testing.T) {
	addr, key, model := env(t)
	ctx := testContext(t)
	client := dial(t, ctx, addr, gateway.WithAPIKey(key))

	models, err := client.ListModels(ctx)
	if err != nil {
		t.Fatalf("ListModels: %v", err)
	}
	if !slices.ContainsFunc(models.GetData(), func(m *pb.Model) bool { return m.GetId() == model }) {
		t.Fatalf("ListModels: %s not in %v", model, models.GetData())
	}
	count, err := client.CountInputTokens(ctx, &pb.CountInputTokensRequest{
		Model: proto.String(model), Input: gateway.TextInput("Say hi"),
	})
	if err != nil || count.GetInputTokens() <= 0 {
		t.Fatalf("CountInputTokens: %v, %v", count, err)
	}
	compacted, err := client.Compact(ctx, &pb.CompactResponseRequest{
		Model: proto.String(model), Input: gateway.TextInput("Say hi"),
	})
	if err != nil || compacted.GetObject() != "response.compaction" {
		t.Fatalf("Compact: %v, %v", compacted, err)
	}
}

func TestUnauthenticated(t *testing.T) {
	addr, _, model := env(t)
	ctx := testContext(t)
	for _, opts := range [][]gateway.Option{nil, {gateway.WithAPIKey("sk-wrong")}} {
		client := dial(t, ctx, addr, opts...)
		_, err := client.Create(ctx, request(model, "Say hi"))
		wantError(t, err, codes.Unauthenticated, "UNAUTHENTICATED")

		stream, err := client.Stream(ctx, request(model, "Say hi"))
		if err == nil {
			_, err = stream.Recv()
		}
		wantError(t, err, codes.Unauthenticated, "UNAUTHENTICATED")
		if stream != nil {
			_, err = stream.FinalResponse()
			wantError(t, err, codes.Unauthenticated, "UNAUTHENTICATED")
		}

		_, err = client.ListModels(ctx)
		wantError(t, err, codes.Unauthenticated, "UNAUTHENTICATED")
	}
}

func TestUnknownModel(t *testing.T) {
	addr, key, _ := env(t)
	ctx := testContext(t)
	client := dial(t, ctx, addr, gateway.WithAPIKey(key))

	_, err := client.Create(ctx, request("no-such-model", "Say hi"))
	gerr := wantError(t, err, codes.NotFound, "MODEL_NOT_FOUND")
	if gerr.Param() != "model" {
		t.Errorf("param = %q, want model (metadata %v)", gerr.Param(), gerr.Metadata)
	}
	if gerr.Message == "" || !strings.Contains(gerr.Error(), "MODEL_NOT_FOUND") {
		t.Errorf("Error() = %q", gerr.Error())
	}

	stream, err := client.Stream(ctx, request("no-such-model", "Say hi"))
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	_, err = stream.Recv()
	wantError(t, err, codes.NotFound, "MODEL_NOT_FOUND")

	// The raw generated stubs share the connection and key; AsError decodes their errors.
	_, err = client.Responses().CreateResponse(ctx, request("no-such-model", "Say hi"))
	raw, ok := gateway.AsError(err)
	if !ok || raw.Reason != "MODEL_NOT_FOUND" || raw.Code != codes.NotFound {
		t.Fatalf("AsError(%v) = %v, %v", err, raw, ok)
	}
}

func TestRateLimited(t *testing.T) {
	addr, key, _ := env(t)
	model := os.Getenv("GATEWAY_RATE_LIMITED_MODEL")
	if model == "" {
		t.Skip("GATEWAY_RATE_LIMITED_MODEL is not set")
	}
	ctx := testContext(t)
	client := dial(t, ctx, addr, gateway.WithAPIKey(key))
	_, err := client.Create(ctx, request(model, "Say hi"))
	gerr := wantError(t, err, codes.ResourceExhausted, "RATE_LIMITED")
	if gerr.RetryAfter <= 0 {
		t.Errorf("RetryAfter = %s, want > 0 (metadata %v)", gerr.RetryAfter, gerr.Metadata)
	}
}

func TestDeadline(t *testing.T) {
	addr, key, model := env(t)
	client := dial(t, testContext(t), addr, gateway.WithAPIKey(key))
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err := client.Create(ctx, request(model, "Say hi"))
	wantError(t, err, codes.DeadlineExceeded, "")
}

func TestDialUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// Port 1 on loopback: nothing listens there.
	if client, err := gateway.Dial(ctx, "127.0.0.1:1", gateway.WithInsecure()); err == nil {
		_ = client.Close()
		t.Fatal("Dial to a closed port succeeded")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial: %v, want a deadline error", err)
	}
}
