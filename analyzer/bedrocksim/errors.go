package bedrocksim

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// apiError is an error as Bedrock puts it on the wire: an HTTP status, the
// X-Amzn-ErrorType header (which the SDK maps to a typed exception) and a
// {"message": ...} body.
type apiError struct {
	Status  int
	Code    string // exception name, e.g. ThrottlingException
	Message string
	// streamType is the event-stream member name used when the error has
	// to be sent inside a stream, e.g. throttlingException.
	streamType string
	// reason classifies throttles for the stats: requests, tokens, fault, storm.
	reason string
	// plain omits the coral namespace suffix, as AWS's front door does for
	// authentication errors.
	plain bool
	// retryAfter, when set, is sent as a Retry-After header (seconds).
	retryAfter int
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// Messages Bedrock uses, kept verbatim so clients matching on them work.
const (
	msgTooManyRequests = "Too many requests, please wait before trying again."
	msgTooManyTokens   = "Too many tokens, please wait before trying again."
	msgQuotaExceeded   = "Your request exceeds the service quota for your account. You can view your account quotas at Viewing service quotas. You can resubmit your request later."
	msgNotReady        = "Model is not ready for inference. Wait and try your request again."
	msgUnavailable     = "Bedrock is unable to process your request."
	msgInternal        = "The system encountered an unexpected error during processing. Try your request again."
	msgTimeout         = "Model has timed out in processing the request. Try your request again."
	msgUnknownModel    = "The provided model identifier is invalid."
	msgAccessDenied    = "You don't have access to the model with the specified model ID."
	msgInputTooLong    = "Input is too long for requested model."
)

func errThrottle(reason, msg string) *apiError {
	return &apiError{Status: 429, Code: "ThrottlingException", Message: msg, streamType: "throttlingException", reason: reason}
}
func errNotReady() *apiError {
	return &apiError{Status: 429, Code: "ModelNotReadyException", Message: msgNotReady}
}
func errQuota() *apiError {
	return &apiError{Status: 400, Code: "ServiceQuotaExceededException", Message: msgQuotaExceeded}
}
func errValidation(msg string) *apiError {
	return &apiError{Status: 400, Code: "ValidationException", Message: msg, streamType: "validationException"}
}
func errNotFound(msg string) *apiError {
	return &apiError{Status: 404, Code: "ResourceNotFoundException", Message: msg}
}
func errAccessDenied() *apiError {
	return &apiError{Status: 403, Code: "AccessDeniedException", Message: msgAccessDenied}
}
func errTimeout() *apiError {
	return &apiError{Status: 408, Code: "ModelTimeoutException", Message: msgTimeout, streamType: "modelTimeoutException"}
}
func errUnavailable() *apiError {
	return &apiError{Status: 503, Code: "ServiceUnavailableException", Message: msgUnavailable, streamType: "serviceUnavailableException"}
}
func errInternal() *apiError {
	return &apiError{Status: 500, Code: "InternalServerException", Message: msgInternal, streamType: "internalServerException"}
}

// errConnectionCut is the connection dropped mid-stream (MidStreamCut):
// counted under this code, never written.
func errConnectionCut() *apiError {
	return &apiError{Status: 0, Code: codeConnectionCut, Message: "the connection was dropped"}
}

const codeConnectionCut = "ConnectionCut"

func errModelStream() *apiError {
	return &apiError{Status: 424, Code: "ModelStreamErrorException", Message: "The model stream was interrupted.", streamType: "modelStreamErrorException"}
}
func errAuth(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg, plain: true}
}

// coralSuffix is appended to X-Amzn-ErrorType as Bedrock does; the SDK
// strips everything after the colon.
const coralSuffix = ":http://internal.amazon.com/coral/com.amazon.bedrock/"

func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.plain {
		h.Set("X-Amzn-ErrorType", e.Code)
	} else {
		h.Set("X-Amzn-ErrorType", e.Code+coralSuffix)
	}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	w.WriteHeader(e.Status)
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{e.Message})
	_, _ = w.Write(body)
}
