package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dnx-ml/dnx"
)

// apiError is an error a client sees: an HTTP status and a message naming the field at fault.
// REST writes it as {"error": "..."}; gRPC as the matching status code.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// errorf returns an apiError with the given HTTP status.
func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// badRequest is a 400: the request is malformed or does not fit the model.
func badRequest(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, format, args...)
}

// errQueueFull is what a request gets when its model's queue is full: it is refused at once
// rather than held, so that memory stays bounded under overload.
var errQueueFull = errors.New("queue full")

// errStopped is what a request gets when it reaches a batcher that is shutting down.
var errStopped = errors.New("server is shutting down")

// asAPIError classifies err: API errors as they are, bad inputs the session found as 400, a full
// queue or shutdown as 503, an expired deadline as 503 (the server could not answer in time),
// a client that went away as 499 (nginx's "client closed request": nobody reads it), anything
// else as 500.
func asAPIError(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, errQueueFull):
		return errorf(http.StatusServiceUnavailable, "%v: the server is at capacity, retry later", err)
	case errors.Is(err, errStopped):
		return errorf(http.StatusServiceUnavailable, "%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusServiceUnavailable, "request timed out: %v", err)
	case errors.Is(err, context.Canceled):
		return errorf(499, "request cancelled: %v", err)
	case errors.Is(err, dnx.ErrInput), errors.Is(err, dnx.ErrOverBudget):
		return badRequest("%v", err)
	}
	return errorf(http.StatusInternalServerError, "%v", err)
}

// grpcError converts err into a gRPC status with the code matching its HTTP status.
func grpcError(err error) error {
	ae := asAPIError(err)
	code := codes.Internal
	switch ae.status {
	case http.StatusBadRequest:
		code = codes.InvalidArgument
	case http.StatusNotFound:
		code = codes.NotFound
	case http.StatusServiceUnavailable:
		code = codes.Unavailable
		if errors.Is(err, context.DeadlineExceeded) {
			code = codes.DeadlineExceeded
		}
	case http.StatusRequestEntityTooLarge:
		code = codes.ResourceExhausted
	case 499:
		code = codes.Canceled
	}
	return status.Error(code, ae.msg)
}
