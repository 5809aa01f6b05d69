package streams

import "encoding/json"

// ObjectRef points at an object in the claim-check store: events carry
// references, never document bytes.
type ObjectRef struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// UploadedData is the payload of document.uploaded.
type UploadedData struct {
	Original    ObjectRef `json:"original"`
	Filename    string    `json:"filename"`
	ContentType string    `json:"content_type,omitempty"` // as declared by the client; a hint only
	UploadedBy  string    `json:"uploaded_by"`
	Via         string    `json:"via"` // http or nats
}

// ExtractedData is the payload of document.extracted.
type ExtractedData struct {
	Text      ObjectRef `json:"text"`
	Format    string    `json:"format"` // detected by content: txt, pdf, docx, ...
	Encoding  string    `json:"encoding,omitempty"`
	Pages     int       `json:"pages,omitempty"`
	Sheets    int       `json:"sheets,omitempty"`
	Words     int       `json:"words"`
	Chars     int       `json:"chars"`
	Truncated bool      `json:"truncated"`
	Language  string    `json:"language,omitempty"`
	Title     string    `json:"title,omitempty"`
	Author    string    `json:"author,omitempty"`
}

// Attempt is one model call in an analysis: the attempt trail stored with
// the assessment explains which models were tried and why.
type Attempt struct {
	Model     string `json:"model"`
	Outcome   string `json:"outcome"` // ok, throttled, error, timeout, ...
	LatencyMS int64  `json:"latency_ms"`
	Error     string `json:"error,omitempty"`
}

// AnalyzedData is the payload of document.analyzed.
type AnalyzedData struct {
	Assessment    json.RawMessage `json:"assessment"`
	Score         int             `json:"score"`
	Level         string          `json:"level"`
	Model         string          `json:"model"`
	PromptVersion string          `json:"prompt_version"`
	TextSHA256    string          `json:"text_sha256"`
	Attempts      []Attempt       `json:"attempts"`
	InputTokens   int             `json:"input_tokens"`
	OutputTokens  int             `json:"output_tokens"`
	CostUSD       float64         `json:"cost_usd"`
	Cached        bool            `json:"cached"`
}

// FailedData is the payload of document.failed.
type FailedData struct {
	Stage       Stage  `json:"stage"`
	Reason      string `json:"reason"`       // for people
	ReasonClass string `json:"reason_class"` // stable slug for programs, e.g. invalid-utf8
	Attempts    int    `json:"attempts,omitempty"`
}

// ProgressData is the payload of document.progress: what a stage is doing
// now, for the status page and SSE.
type ProgressData struct {
	Stage   Stage  `json:"stage"`
	Step    string `json:"step"`   // started, queued, chunk, ...
	Status  string `json:"status"` // the document status it implies, e.g. extracting, analyzing, queued
	Message string `json:"message,omitempty"`
	Done    int    `json:"done,omitempty"`
	Total   int    `json:"total,omitempty"`
}
