package assessment

import "math"

// SeverityWeight is the contribution of one finding of the given severity,
// in points out of 100. Unknown severities weigh nothing.
func SeverityWeight(severity string) int {
	switch severity {
	case SeverityCritical:
		return 50
	case SeverityHigh:
		return 25
	case SeverityMedium:
		return 10
	case SeverityLow:
		return 3
	}
	return 0
}

// Score derives the overall score (0-100) and risk level from the findings,
// so the number a user sees can be explained from the list of findings alone
// instead of trusting a model's guess.
//
// The rule:
//
//  1. Each finding has a weight by severity: critical 50, high 25,
//     medium 10, low 3 (SeverityWeight). A single critical finding thus
//     makes a document high risk on its own, a single high one medium.
//  2. Weights combine with diminishing returns, like independent chances:
//     every finding takes its weight in percent of the headroom that is
//     left, score = 100 × (1 − Π(1 − wᵢ/100)). Order does not matter, more
//     findings never lower the score, and it can never pass 100. Examples:
//     one high = 25; two high = 44; one critical + one high = 63; two
//     critical = 75; three medium = 27.
//  3. The result is rounded to the nearest integer, and the level follows
//     LevelFor: 0-24 low, 25-49 medium, 50-74 high, 75-100 critical.
//
// No findings score 0 (low).
func Score(factors []RiskFactor) (int, string) {
	remaining := 1.0
	for _, f := range factors {
		remaining *= 1 - float64(SeverityWeight(f.Severity))/100
	}
	score := int(math.Round(100 * (1 - remaining)))
	score = min(max(score, 0), 100)
	return score, LevelFor(score)
}

// LevelFor maps a score to its risk level: 0-24 low, 25-49 medium,
// 50-74 high, 75 and above critical.
func LevelFor(score int) string {
	switch {
	case score >= 75:
		return SeverityCritical
	case score >= 50:
		return SeverityHigh
	case score >= 25:
		return SeverityMedium
	default:
		return SeverityLow
	}
}
