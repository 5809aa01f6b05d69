// Package assessment is the risk-assessment contract shared by the analyzer
// (which asks a model for an assessment and checks what comes back) and the
// Bedrock simulator (which produces one). Keeping the types, the tool schema
// (schema.json, which is also what answers are validated against) and the
// scoring rule in one place means both sides agree on what a well-formed,
// grounded assessment is.
package assessment

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/aiprism/prism/platform/spaces"
)

// ToolName is the tool the model is forced to call to record its assessment.
const ToolName = "record_risk_assessment"

// Severities of a single finding (and overall risk levels), from least to
// most severe; schema.json lists the same words.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
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

// ungrounded lists the findings whose evidence is not a quote from text,
// as "pointer: problem" lines like the schema's.
func ungrounded(a Assessment, text string) []string {
	var out []string
	normText := ""
	if len(a.RiskFactors) > 0 {
		normText = spaces.Collapse(text)
	}
	for i, f := range a.RiskFactors {
		if q := spaces.Collapse(f.Evidence); q != "" && !strings.Contains(normText, q) {
			out = append(out, fmt.Sprintf("/risk_factors/%d/evidence: not a verbatim quote from the document: %q", i, truncate(f.Evidence, 80)))
		}
	}
	return out
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
