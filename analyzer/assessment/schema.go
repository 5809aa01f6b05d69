package assessment

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// schemaFile is the one definition of a well-formed assessment: the model
// is given it as the tool's input schema and its answers are checked
// against it, so the two can never drift apart.
//
//go:embed schema.json
var schemaFile []byte

// schemaURL names the schema inside the compiler; nothing is loaded from it.
const schemaURL = "urn:prism:assessment"

// Validator checks a model's tool input against the schema and the document
// it assesses. Build it once (NewValidator compiles the schema) and share it:
// it is safe for concurrent use.
type Validator struct {
	raw     []byte // the canonical schema: what is compiled and what the model is sent
	tool    any    // raw decoded, for a tool definition
	schema  *jsonschema.Schema
	printer *message.Printer
}

// MustNewValidator is NewValidator for callers to whom a schema that does
// not compile is a broken build: the schema is embedded, and every test of
// the package compiles it.
func MustNewValidator() *Validator {
	v, err := NewValidator()
	if err != nil {
		panic(err)
	}
	return v
}

// NewValidator compiles the embedded schema.
func NewValidator() (*Validator, error) {
	raw, err := canonical(schemaFile)
	if err != nil {
		return nil, fmt.Errorf("assessment: schema.json: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("assessment: schema.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("assessment: schema.json: %w", err)
	}
	compiled, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("assessment: compile schema.json: %w", err)
	}
	var tool any
	if err := json.Unmarshal(raw, &tool); err != nil {
		return nil, fmt.Errorf("assessment: schema.json: %w", err)
	}
	return &Validator{raw: raw, tool: tool, schema: compiled, printer: message.NewPrinter(language.English)}, nil
}

// canonical is the schema as compact JSON with sorted keys: the form the
// AWS SDK puts on the wire for a tool schema given as a Go value, so the
// bytes compiled here are the bytes the model receives.
func canonical(src []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber() // keep numbers as written
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Schema returns the JSON Schema of the tool input, as compiled.
func (v *Validator) Schema() []byte { return slices.Clone(v.raw) }

// ToolSchema returns the schema decoded, ready for a Converse
// toolSpec.inputSchema.json (wrapped in document.NewLazyDocument) or an
// Anthropic tool's input_schema. It is shared between calls: do not modify
// it.
func (v *Validator) ToolSchema() any { return v.tool }

// Parse decodes a tool input (or a JSON answer) and checks it: against the
// schema, and that every evidence quote occurs in text, which no schema can
// say. Quotes are compared after collapsing runs of whitespace on both
// sides, since models routinely reflow line breaks. Every problem is
// reported, one per line and each led by the JSON pointer of its field, so
// the model can be told in one repair turn all that is wrong.
func (v *Validator) Parse(raw []byte, text string) (Assessment, error) {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return Assessment{}, fmt.Errorf("assessment: not JSON: %w", err)
	}
	var problems []string
	if err := v.schema.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return Assessment{}, fmt.Errorf("assessment: validate: %w", err)
		}
		problems = v.describe(ve, problems)
		slices.Sort(problems)
	}
	a, err := decode(raw)
	if err != nil && len(problems) == 0 {
		return Assessment{}, fmt.Errorf("assessment: decode: %w", err)
	}
	if err == nil {
		problems = append(problems, ungrounded(a, text)...)
	}
	if len(problems) > 0 {
		return Assessment{}, fmt.Errorf("assessment: invalid:\n%s", strings.Join(problems, "\n"))
	}
	return a, nil
}

// decode reads an assessment that the schema accepts. The schema's integer
// admits 50.0 and 5e1, which encoding/json will not put in an int.
func decode(raw []byte) (Assessment, error) {
	var w struct {
		Assessment
		OverallScore json.Number `json:"overall_score"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return Assessment{}, err
	}
	score, err := w.OverallScore.Float64()
	if err != nil {
		return Assessment{}, fmt.Errorf("overall_score: %w", err)
	}
	w.Assessment.OverallScore = int(score)
	return w.Assessment, nil
}

// describe renders the failed leaves of a validation error as
// "pointer: message". A missing or an unexpected property is named by its
// own pointer, not its parent's.
func (v *Validator) describe(e *jsonschema.ValidationError, out []string) []string {
	for _, c := range e.Causes {
		out = v.describe(c, out)
	}
	if len(e.Causes) > 0 {
		return out
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, p := range k.Missing {
			out = append(out, pointer(append(slices.Clip(e.InstanceLocation), p))+": required property is missing")
		}
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			out = append(out, pointer(append(slices.Clip(e.InstanceLocation), p))+": property is not in the schema")
		}
	default:
		out = append(out, pointer(e.InstanceLocation)+": "+k.LocalizedString(v.printer))
	}
	return out
}

// pointer renders a location as a JSON pointer (RFC 6901); the whole
// document, whose pointer is empty, as "(document)".
func pointer(tokens []string) string {
	if len(tokens) == 0 {
		return "(document)"
	}
	esc := strings.NewReplacer("~", "~0", "/", "~1")
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(esc.Replace(t))
	}
	return b.String()
}
