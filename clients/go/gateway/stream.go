package gateway

import (
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	pb "github.com/responses-gateway/responses-gateway/clients/go/responsesgatewayv1"
)

// Stream is the event stream of one response. Read it with the standard loop:
//
//	for {
//		event, err := stream.Recv()
//		if err == io.EOF {
//			break
//		}
//		if err != nil {
//			return err // a *gateway.Error
//		}
//		if delta, ok := gateway.TextDelta(event); ok {
//			fmt.Print(delta)
//		}
//	}
//	final, err := stream.FinalResponse()
//
// A Stream is not safe for concurrent Recv calls (Close may be called from any goroutine).
type Stream struct {
	call   grpc.ServerStreamingClient[pb.ResponseStreamEvent]
	cancel func()

	err      error // io.EOF or the *Error that ended the stream; nil while it runs
	final    *pb.Response
	errEvent *pb.ResponseErrorEvent
}

// Recv returns the next event; io.EOF once the stream has ended normally, else a *Error.
func (s *Stream) Recv() (*pb.ResponseStreamEvent, error) {
	if s.err != nil {
		return nil, s.err
	}
	event, err := s.call.Recv()
	if err != nil {
		if err != io.EOF {
			err = convert(err)
		}
		s.err = err
		s.cancel() // release the call's resources
		return nil, err
	}
	if resp := TerminalResponse(event); resp != nil {
		s.final = resp
	} else if e := event.GetError(); e != nil {
		s.errEvent = e
	}
	return event, nil
}

// FinalResponse reads the remaining events and returns the response of the terminal event
// (response.completed, response.failed or response.incomplete; check its Status). Without one
// it returns the error that ended the stream: the *Error of the call, or one made from the
// stream's `error` event (Code Unknown, Reason its code in upper case).
func (s *Stream) FinalResponse() (*pb.Response, error) {
	for s.err == nil {
		if _, err := s.Recv(); err != nil {
			break
		}
	}
	if s.final != nil {
		return s.final, nil
	}
	if s.errEvent != nil {
		return nil, errorFromEvent(s.errEvent)
	}
	if s.err != io.EOF {
		return nil, s.err
	}
	return nil, &Error{Code: codes.Unknown, Message: "the stream ended without a terminal event"}
}

// Close cancels the call if it is still running: Recv then returns a Canceled *Error (possibly
// after events that had already arrived). It is safe to call more than once, from any goroutine,
// and after the stream has ended.
func (s *Stream) Close() error {
	s.cancel() // a context.CancelFunc: idempotent and safe from any goroutine
	return nil
}

// TextDelta is the text of a response.output_text.delta event.
func TextDelta(event *pb.ResponseStreamEvent) (string, bool) {
	if d := event.GetResponseOutputTextDelta(); d != nil {
		return d.GetDelta(), true
	}
	return "", false
}

// TerminalResponse is the response carried by a terminal event (response.completed,
// response.failed or response.incomplete), else nil.
func TerminalResponse(event *pb.ResponseStreamEvent) *pb.Response {
	switch kind := event.GetKind().(type) {
	case *pb.ResponseStreamEvent_ResponseCompleted:
		return kind.ResponseCompleted.GetResponse()
	case *pb.ResponseStreamEvent_ResponseFailed:
		return kind.ResponseFailed.GetResponse()
	case *pb.ResponseStreamEvent_ResponseIncomplete:
		return kind.ResponseIncomplete.GetResponse()
	}
	return nil
}

func errorFromEvent(e *pb.ResponseErrorEvent) *Error {
	err := &Error{Code: codes.Unknown, Message: e.GetMessage(), Metadata: map[string]string{}}
	if e.Code != nil {
		err.Reason = strings.ToUpper(e.GetCode())
		err.Metadata["code"] = e.GetCode()
	}
	if e.Param != nil {
		err.Metadata["param"] = e.GetParam()
	}
	return err
}
