package bedrocksim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// EventStreamContentType is the media type of Bedrock's streaming responses.
const EventStreamContentType = "application/vnd.amazon.eventstream"

// frameWriter writes application/vnd.amazon.eventstream messages (prelude,
// headers, payload and CRCs, done by the SDK's own encoder) and flushes each
// one, so the client sees events as they are produced.
type frameWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	enc *eventstream.Encoder
}

func newFrameWriter(w http.ResponseWriter) *frameWriter {
	return &frameWriter{w: w, rc: http.NewResponseController(w), enc: eventstream.NewEncoder()}
}

func (f *frameWriter) write(msg eventstream.Message) error {
	if err := f.enc.Encode(f.w, msg); err != nil {
		return fmt.Errorf("write event frame: %w", err)
	}
	if err := f.rc.Flush(); err != nil {
		return fmt.Errorf("flush event frame: %w", err)
	}
	return nil
}

// event writes one event of the given type (e.g. contentBlockDelta or chunk)
// with v marshalled as its JSON payload.
func (f *frameWriter) event(eventType string, v any) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("marshal %s event: %w", eventType, err)
	}
	var msg eventstream.Message
	msg.Headers.Set(":event-type", eventstream.StringValue(eventType))
	msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	msg.Headers.Set(":message-type", eventstream.StringValue("event"))
	msg.Payload = payload
	return f.write(msg)
}

// chunk writes an InvokeModelWithResponseStream chunk: the Anthropic stream
// event v, JSON encoded, carried base64 encoded in {"bytes": ...}.
func (f *frameWriter) chunk(v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("marshal chunk: %w", err)
	}
	return f.event("chunk", struct {
		Bytes string `json:"bytes"`
	}{base64.StdEncoding.EncodeToString(raw)})
}

// exception writes a modelled exception frame, which the SDK turns into the
// typed error (e.g. *types.ThrottlingException) returned by stream.Err().
func (f *frameWriter) exception(e *apiError) error {
	t := e.streamType
	if t == "" {
		t = "internalServerException"
	}
	payload, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{e.Message})
	var msg eventstream.Message
	msg.Headers.Set(":exception-type", eventstream.StringValue(t))
	msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
	msg.Payload = payload
	return f.write(msg)
}
