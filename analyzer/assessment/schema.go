package assessment

import "slices"

// InputSchema returns the JSON Schema of the record_risk_assessment tool
// input, ready to put in a Converse toolSpec.inputSchema.json or an Anthropic
// tool's input_schema. A fresh map is returned on every call so callers may
// modify it.
func InputSchema() map[string]any {
	str := func(desc string, max int) map[string]any {
		return map[string]any{"type": "string", "minLength": 1, "maxLength": max, "description": desc}
	}
	enum := func(desc string, values []string) map[string]any {
		return map[string]any{"type": "string", "enum": slices.Clone(values), "description": desc}
	}
	factor := map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"required":             []string{"category", "severity", "title", "evidence", "explanation"},
		"properties": map[string]any{
			"category": enum("Kind of risk.", Categories),
			"severity": enum("How serious this finding is.", Severities),
			"title":    str("Short name of the finding.", MaxTitleLen),
			"evidence": str("A verbatim quote from the document that shows the risk.", MaxEvidenceLen),
			"location": map[string]any{"type": "string", "maxLength": MaxLocationLen,
				"description": "Where in the document the quote is (section, clause or line)."},
			"explanation": str("Why this is a risk.", MaxExplanationLen),
		},
	}
	concern := map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"required":             []string{"regulation", "concern"},
		"properties": map[string]any{
			"regulation": str("Regulation or standard concerned, e.g. GDPR.", MaxTitleLen),
			"concern":    str("What the concern is.", MaxExplanationLen),
		},
	}
	return map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"required":             slices.Clone(requiredTop),
		"properties": map[string]any{
			"summary":       str("Two or three sentences summarising the document's risk.", MaxSummaryLen),
			"overall_score": map[string]any{"type": "integer", "minimum": 0, "maximum": 100, "description": "Overall risk, 0 (none) to 100 (severe)."},
			"risk_level":    enum("Overall risk level.", Levels),
			"risk_factors":  map[string]any{"type": "array", "maxItems": MaxRiskFactors, "items": factor},
			"recommendations": map[string]any{"type": "array", "maxItems": MaxRecommendations,
				"items": str("One concrete recommended action.", MaxRecommendationLen)},
			"compliance_concerns": map[string]any{"type": "array", "maxItems": MaxConcerns, "items": concern},
		},
	}
}
