package bedrocksim

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aiprism/prism/analyzer/assessment"
)

// prompt is the part of a request the simulator acts on, the same whichever
// API (Converse or InvokeModel) it came through.
type prompt struct {
	system      string // all system text, joined by newlines
	lastUser    string // text of the last user message
	messages    int    // turns of the conversation, both roles
	inputTokens int    // EstimateTokens summed over every system and message text
	maxTokens   int    // requested output limit; 0 = not given
	forcedTool  string // tool the request forces, if any
	riskTool    bool   // the request offers record_risk_assessment
}

// wantsAssessment reports whether the request asks for a risk assessment:
// it forces the assessment tool, or it offers that tool and requires some
// tool, or the instructions ask for JSON about risk.
func (p *prompt) wantsAssessment() bool {
	if p.forcedTool == assessment.ToolName || (p.forcedTool == "*" && p.riskTool) {
		return true
	}
	if p.forcedTool != "" {
		return false
	}
	// Material in a chat turn's blocks is data, not instructions: a passage
	// that mentions JSON must not turn a chat answer into an assessment.
	_, outside := splitBlocks(p.lastUser)
	instr := strings.ToLower(p.system + "\n" + outside)
	return strings.Contains(instr, "json") && (strings.Contains(instr, "risk") || strings.Contains(instr, assessment.ToolName))
}

// ---- Converse -------------------------------------------------------------

type converseRequest struct {
	Messages        []cvMessage `json:"messages"`
	System          []cvBlock   `json:"system"`
	InferenceConfig *struct {
		MaxTokens *int `json:"maxTokens"`
	} `json:"inferenceConfig"`
	ToolConfig *struct {
		Tools []struct {
			ToolSpec *struct {
				Name string `json:"name"`
			} `json:"toolSpec"`
		} `json:"tools"`
		ToolChoice *struct {
			Any  *struct{} `json:"any"`
			Tool *struct {
				Name string `json:"name"`
			} `json:"tool"`
		} `json:"toolChoice"`
	} `json:"toolConfig"`
}

type cvMessage struct {
	Role    string    `json:"role"`
	Content []cvBlock `json:"content"`
}

// cvBlock is a content block; members the simulator does not read (images,
// documents, cache points, reasoning) are ignored.
type cvBlock struct {
	Text       *string    `json:"text,omitempty"`
	ToolUse    *cvToolUse `json:"toolUse,omitempty"`
	ToolResult *struct {
		Content []struct {
			Text *string         `json:"text"`
			JSON json.RawMessage `json:"json"`
		} `json:"content"`
	} `json:"toolResult,omitempty"`
}

type cvToolUse struct {
	ToolUseID string          `json:"toolUseId"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
}

func parseConverse(body []byte) (prompt, *apiError) {
	var req converseRequest
	var p prompt
	if err := json.Unmarshal(body, &req); err != nil {
		return p, errValidation("Malformed input request: " + err.Error())
	}
	if len(req.Messages) == 0 || req.Messages[0].Role != "user" {
		return p, errValidation("A conversation must start with a user message. Try again with a conversation that starts with a user message.")
	}
	var sys []string
	for _, b := range req.System {
		if b.Text != nil {
			sys = append(sys, *b.Text)
			p.inputTokens += EstimateTokens(*b.Text)
		}
	}
	p.system = strings.Join(sys, "\n")
	p.messages = len(req.Messages)
	for _, m := range req.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return p, errValidation(fmt.Sprintf("Role %q is not valid; use user or assistant.", m.Role))
		}
		var text []string
		for _, b := range m.Content {
			switch {
			case b.Text != nil:
				text = append(text, *b.Text)
				p.inputTokens += EstimateTokens(*b.Text)
			case b.ToolUse != nil:
				p.inputTokens += EstimateTokens(string(b.ToolUse.Input))
			case b.ToolResult != nil:
				for _, c := range b.ToolResult.Content {
					if c.Text != nil {
						p.inputTokens += EstimateTokens(*c.Text)
					}
					p.inputTokens += EstimateTokens(string(c.JSON))
				}
			}
		}
		if m.Role == "user" {
			p.lastUser = strings.Join(text, "\n")
		}
	}
	if c := req.InferenceConfig; c != nil && c.MaxTokens != nil {
		if *c.MaxTokens < 1 {
			return p, errValidation("The value at inferenceConfig.maxTokens must be at least 1.")
		}
		p.maxTokens = *c.MaxTokens
	}
	if tc := req.ToolConfig; tc != nil {
		for _, t := range tc.Tools {
			if t.ToolSpec != nil && t.ToolSpec.Name == assessment.ToolName {
				p.riskTool = true
			}
		}
		if ch := tc.ToolChoice; ch != nil {
			switch {
			case ch.Tool != nil:
				p.forcedTool = ch.Tool.Name
			case ch.Any != nil:
				p.forcedTool = "*"
			}
		}
	}
	return p, nil
}

// ---- InvokeModel (Anthropic Messages body) ---------------------------------

// AnthropicVersion is the body version Bedrock requires for Claude.
const AnthropicVersion = "bedrock-2023-05-31"

type anthropicRequest struct {
	AnthropicVersion string          `json:"anthropic_version"`
	MaxTokens        *int            `json:"max_tokens"`
	System           json.RawMessage `json:"system"`
	Messages         []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Name string `json:"name"`
	} `json:"tools"`
	ToolChoice *struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tool_choice"`
}

// anBlock is an Anthropic content block; strings and block arrays both occur.
type anBlock struct {
	Type    string          `json:"type"`
	Text    string          `json:"text"`
	Input   json.RawMessage `json:"input"`
	Content json.RawMessage `json:"content"`
}

// anText flattens an Anthropic "string or array of blocks" value into its
// text pieces; tool inputs and nested tool results count as their JSON text.
func anText(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	var blocks []anBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, err
	}
	var out []string
	for _, b := range blocks {
		switch b.Type {
		case "text":
			out = append(out, b.Text)
		case "tool_use":
			out = append(out, string(b.Input))
		case "tool_result":
			inner, err := anText(b.Content)
			if err != nil {
				return nil, err
			}
			out = append(out, inner...)
		}
	}
	return out, nil
}

func malformed(detail string) *apiError {
	return errValidation("Malformed input request: " + detail + ", please reformat your input and try again.")
}

func parseAnthropic(body []byte) (prompt, *apiError) {
	var req anthropicRequest
	var p prompt
	if err := json.Unmarshal(body, &req); err != nil {
		return p, malformed(err.Error())
	}
	switch {
	case req.AnthropicVersion == "":
		return p, malformed("#: required key [anthropic_version] not found")
	case req.AnthropicVersion != AnthropicVersion:
		return p, errValidation("Invalid API version: " + req.AnthropicVersion)
	case req.MaxTokens == nil:
		return p, malformed("#: required key [max_tokens] not found")
	case *req.MaxTokens < 1:
		return p, malformed("#/max_tokens: must be at least 1")
	case len(req.Messages) == 0:
		return p, malformed("#: required key [messages] not found")
	}
	p.maxTokens = *req.MaxTokens
	sys, err := anText(req.System)
	if err != nil {
		return p, malformed("#/system: " + err.Error())
	}
	for _, s := range sys {
		p.inputTokens += EstimateTokens(s)
	}
	p.system = strings.Join(sys, "\n")
	p.messages = len(req.Messages)
	for i, m := range req.Messages {
		parts, err := anText(m.Content)
		if err != nil {
			return p, malformed(fmt.Sprintf("#/messages/%d/content: %v", i, err))
		}
		for _, s := range parts {
			p.inputTokens += EstimateTokens(s)
		}
		if m.Role == "user" {
			p.lastUser = strings.Join(parts, "\n")
		}
	}
	for _, t := range req.Tools {
		if t.Name == assessment.ToolName {
			p.riskTool = true
		}
	}
	if tc := req.ToolChoice; tc != nil {
		switch tc.Type {
		case "tool":
			p.forcedTool = tc.Name
		case "any":
			p.forcedTool = "*"
		}
	}
	return p, nil
}
