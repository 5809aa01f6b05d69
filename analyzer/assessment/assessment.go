// Package assessment is the risk-assessment contract shared by the analyzer
// (which asks a model for an assessment and checks what comes back) and the
// Bedrock simulator (which produces one). Keeping the types, the tool schema,
// the validation and the scoring rule in one place means both sides agree on
// what a well-formed, grounded assessment is.
package assessment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/aiprism/prism/platform/spaces"
	"slices"
	"strings"
	"unicode/utf8"
)

// ToolName is the tool the model is forced to call to record its assessment.
const ToolName = "record_risk_assessment"

// Severities of a single finding, from least to most severe.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// Severities lists the allowed severity (and risk level) values in order.
var Severities = []string{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// Levels lists the allowed overall risk levels; they share the severity words.
var Levels = Severities

// Categories is the fixed vocabulary of risk-factor categories.
var Categories = []string{
	"liability", "indemnity", "termination", "auto-renewal", "governing-law",
	"data-protection", "data-transfer", "subprocessors", "breach-notification",
	"special-category-data", "security-incident", "access-control",
	"regulatory-notification", "financial", "fraud", "safety", "penalty", "other",
}

// Bounds on field sizes. They keep a runaway model answer from flooding
// storage and are mirrored in InputSchema.
const (
	MaxSummaryLen        = 2000
	MaxTitleLen          = 200
	MaxEvidenceLen       = 1000
	MaxLocationLen       = 200
	MaxExplanationLen    = 2000
	MaxRecommendationLen = 1000
	MaxRiskFactors       = 50
	MaxRecommendations   = 20
	MaxConcerns          = 20
)

// Assessment is the structured risk assessment of one document.
type Assessment struct {
	Summary            string              `json:"summary"`
	OverallScore       int                 `json:"overall_score"` // 0-100
	RiskLevel          string              `json:"risk_level"`    // low|medium|high|critical
	RiskFactors        []RiskFactor        `json:"risk_factors"`
	Recommendations    []string            `json:"recommendations"`
	ComplianceConcerns []ComplianceConcern `json:"compliance_concerns"`
}

// RiskFactor is one finding, grounded in a verbatim quote from the document.
type RiskFactor struct {
	Category    string `json:"category"`
	Severity    string `json:"severity"`
	Title       string `json:"title"`
	Evidence    string `json:"evidence"`
	Location    string `json:"location,omitempty"`
	Explanation string `json:"explanation"`
}

// ComplianceConcern names a regulation the document may fall foul of.
type ComplianceConcern struct {
	Regulation string `json:"regulation"`
	Concern    string `json:"concern"`
}

var requiredTop = []string{"summary", "overall_score", "risk_level", "risk_factors", "recommendations", "compliance_concerns"}

// Parse decodes a tool input (or a JSON answer) strictly: unknown fields,
// trailing data and missing or null required fields are errors, because a
// model that drifts from the schema should be caught, not silently accepted.
// Parse does not check content; call Validate for that.
func Parse(raw []byte) (Assessment, error) {
	var a Assessment
	var present map[string]json.RawMessage
	if err := json.Unmarshal(raw, &present); err != nil {
		return a, fmt.Errorf("assessment: decode: %w", err)
	}
	for _, k := range requiredTop {
		v, ok := present[k]
		if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return a, fmt.Errorf("assessment: required field %q is missing", k)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return Assessment{}, fmt.Errorf("assessment: decode: %w", err)
	}
	if dec.More() {
		return Assessment{}, errors.New("assessment: trailing data after JSON object")
	}
	return a, nil
}

// Validate checks an assessment against the contract: enum values, bounds,
// non-empty fields, and that every evidence quote occurs in text. Quotes are
// compared after collapsing runs of whitespace to a single space on both
// sides, since models routinely reflow line breaks. All problems are reported
// together (errors.Join) so a caller can log them in one go.
func Validate(a Assessment, text string) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	checkText := func(field, v string, max int) {
		if strings.TrimSpace(v) == "" {
			bad("%s is empty", field)
		} else if utf8.RuneCountInString(v) > max {
			bad("%s is longer than %d characters", field, max)
		}
	}
	checkText("summary", a.Summary, MaxSummaryLen)
	if a.OverallScore < 0 || a.OverallScore > 100 {
		bad("overall_score %d is outside 0-100", a.OverallScore)
	}
	if !slices.Contains(Levels, a.RiskLevel) {
		bad("risk_level %q is not one of %v", a.RiskLevel, Levels)
	}
	if len(a.RiskFactors) > MaxRiskFactors {
		bad("%d risk_factors exceed the maximum of %d", len(a.RiskFactors), MaxRiskFactors)
	}
	normText := ""
	if len(a.RiskFactors) > 0 {
		normText = spaces.Collapse(text)
	}
	for i, f := range a.RiskFactors {
		p := fmt.Sprintf("risk_factors[%d]", i)
		if !slices.Contains(Categories, f.Category) {
			bad("%s.category %q is not a known category", p, f.Category)
		}
		if !slices.Contains(Severities, f.Severity) {
			bad("%s.severity %q is not one of %v", p, f.Severity, Severities)
		}
		checkText(p+".title", f.Title, MaxTitleLen)
		checkText(p+".explanation", f.Explanation, MaxExplanationLen)
		if utf8.RuneCountInString(f.Location) > MaxLocationLen {
			bad("%s.location is longer than %d characters", p, MaxLocationLen)
		}
		checkText(p+".evidence", f.Evidence, MaxEvidenceLen)
		if q := spaces.Collapse(f.Evidence); q != "" && !strings.Contains(normText, q) {
			bad("%s.evidence is not a quote from the document: %q", p, truncate(f.Evidence, 80))
		}
	}
	if len(a.Recommendations) > MaxRecommendations {
		bad("%d recommendations exceed the maximum of %d", len(a.Recommendations), MaxRecommendations)
	}
	for i, r := range a.Recommendations {
		checkText(fmt.Sprintf("recommendations[%d]", i), r, MaxRecommendationLen)
	}
	if len(a.ComplianceConcerns) > MaxConcerns {
		bad("%d compliance_concerns exceed the maximum of %d", len(a.ComplianceConcerns), MaxConcerns)
	}
	for i, c := range a.ComplianceConcerns {
		p := fmt.Sprintf("compliance_concerns[%d]", i)
		checkText(p+".regulation", c.Regulation, MaxTitleLen)
		checkText(p+".concern", c.Concern, MaxExplanationLen)
	}
	if len(errs) > 0 {
		return fmt.Errorf("assessment: invalid: %w", errors.Join(errs...))
	}
	return nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
