package gateway

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the ErrorInfo domain of the errors the gateway itself reports.
const ErrorDomain = "responses-gateway"

// Error is a failed call, decoded from the gRPC status and its google.rpc.ErrorInfo /
// RetryInfo details. Every Client method returns errors of this type (test with errors.As, or
// convert any error from the generated stubs with AsError).
type Error struct {
	// Code is the gRPC status code (codes.Unknown for a stream's `error` event).
	Code codes.Code
	// Reason is the ErrorInfo reason, e.g. "UNAUTHENTICATED", "MODEL_NOT_FOUND",
	// "RESPONSE_NOT_FOUND", "RATE_LIMITED", "INVALID_REQUEST"; "" when the status had none
	// (e.g. a deadline or a cancellation on the client side).
	Reason string
	// Domain is the ErrorInfo domain, ErrorDomain for the gateway's own errors.
	Domain string
	// Message is the status message.
	Message string
	// Metadata is the ErrorInfo metadata: "param", "code" (the OpenAI error code), "retry_after", ...
	Metadata map[string]string
	// RetryAfter is how long to wait before retrying (RetryInfo, else metadata "retry_after"
	// in seconds); 0 when the gateway gave no hint.
	RetryAfter time.Duration

	status *status.Status
}

// Error implements error: "gateway: <Code> <Reason>: <Message>".
func (e *Error) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("gateway: %s %s: %s", e.Code, e.Reason, e.Message)
	}
	return fmt.Sprintf("gateway: %s: %s", e.Code, e.Message)
}

// GRPCStatus makes status.FromError and status.Code work on an *Error.
func (e *Error) GRPCStatus() *status.Status {
	if e.status != nil {
		return e.status
	}
	return status.New(e.Code, e.Message)
}

// Param is the request parameter the error is about (metadata "param"), if any.
func (e *Error) Param() string { return e.Metadata["param"] }

// AsError returns err as an *Error: err itself (or the *Error it wraps), or one decoded from the
// gRPC status err carries (errors of the generated stubs, or of grpc itself such as
// DeadlineExceeded / Canceled). It returns false for nil and for errors without a gRPC status.
func AsError(err error) (*Error, bool) {
	if err == nil {
		return nil, false
	}
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	st, ok := status.FromError(err)
	if !ok {
		return nil, false
	}
	return fromStatus(st), true
}

// convert turns a gRPC error into an *Error (nil stays nil, other errors are returned as they are).
func convert(err error) error {
	if e, ok := AsError(err); ok {
		return e
	}
	return err
}

func fromStatus(st *status.Status) *Error {
	e := &Error{Code: st.Code(), Message: st.Message(), Metadata: map[string]string{}, status: st}
	retrySet := false
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			e.Reason, e.Domain = d.GetReason(), d.GetDomain()
			for k, v := range d.GetMetadata() {
				e.Metadata[k] = v
			}
		case *errdetails.RetryInfo:
			if d.GetRetryDelay() != nil {
				e.RetryAfter, retrySet = d.GetRetryDelay().AsDuration(), true
			}
		}
	}
	if !retrySet {
		if v, err := strconv.ParseFloat(e.Metadata["retry_after"], 64); err == nil && v > 0 {
			e.RetryAfter = time.Duration(v * float64(time.Second))
		}
	}
	return e
}
