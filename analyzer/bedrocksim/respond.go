package bedrocksim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type usage struct {
	InputTokens  int `json:"inputTokens"`
	OutputTokens int `json:"outputTokens"`
	TotalTokens  int `json:"totalTokens"`
}

type cvOutBlock struct {
	Text    *string    `json:"text,omitempty"`
	ToolUse *cvToolUse `json:"toolUse,omitempty"`
}

type metrics struct {
	LatencyMs int64 `json:"latencyMs"`
}

func (s *Server) writeConverse(w http.ResponseWriter, x *exchange) {
	var block cvOutBlock
	if x.rep.toolInput != nil {
		input := json.RawMessage(x.rep.toolInput)
		if x.rep.truncated {
			input = json.RawMessage("{}") // a cut-off tool call carries no usable input
		}
		block.ToolUse = &cvToolUse{ToolUseID: x.rep.toolID, Name: x.rep.toolName, Input: input}
	} else {
		block.Text = &x.rep.text
	}
	var resp struct {
		Output struct {
			Message struct {
				Role    string       `json:"role"`
				Content []cvOutBlock `json:"content"`
			} `json:"message"`
		} `json:"output"`
		StopReason string  `json:"stopReason"`
		Usage      usage   `json:"usage"`
		Metrics    metrics `json:"metrics"`
	}
	resp.Output.Message.Role = "assistant"
	resp.Output.Message.Content = []cvOutBlock{block}
	resp.StopReason = x.rep.stopReason
	resp.Usage = x.usage()
	resp.Metrics.LatencyMs = time.Since(x.began).Milliseconds()
	writeJSON(w, http.StatusOK, resp)
}

func (x *exchange) usage() usage {
	return usage{x.p.inputTokens, x.rep.outputTokens, x.p.inputTokens + x.rep.outputTokens}
}

type anOutBlock struct {
	Type  string          `json:"type"`
	Text  *string         `json:"text,omitempty"`
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
}

type anUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

type anMessage struct {
	ID           string       `json:"id"`
	Type         string       `json:"type"`
	Role         string       `json:"role"`
	Model        string       `json:"model"`
	Content      []anOutBlock `json:"content"`
	StopReason   *string      `json:"stop_reason"`
	StopSequence *string      `json:"stop_sequence"`
	Usage        anUsage      `json:"usage"`
}

func (s *Server) writeInvoke(w http.ResponseWriter, x *exchange) {
	var block anOutBlock
	if x.rep.toolInput != nil {
		input := json.RawMessage(x.rep.toolInput)
		if x.rep.truncated {
			input = json.RawMessage("{}")
		}
		block = anOutBlock{Type: "tool_use", ID: "toolu_bdrk_" + x.rep.id, Name: x.rep.toolName, Input: input}
	} else {
		block = anOutBlock{Type: "text", Text: &x.rep.text}
	}
	msg := x.anthropicMessage([]anOutBlock{block}, &x.rep.stopReason, x.rep.outputTokens)
	h := w.Header()
	h.Set("X-Amzn-Bedrock-Input-Token-Count", strconv.Itoa(x.p.inputTokens))
	h.Set("X-Amzn-Bedrock-Output-Token-Count", strconv.Itoa(x.rep.outputTokens))
	h.Set("X-Amzn-Bedrock-Invocation-Latency", strconv.FormatInt(time.Since(x.began).Milliseconds(), 10))
	writeJSON(w, http.StatusOK, msg)
}

func (x *exchange) anthropicMessage(content []anOutBlock, stop *string, out int) anMessage {
	return anMessage{ID: "msg_bdrk_" + x.rep.id, Type: "message", Role: "assistant", Model: anthropicModelName(x.ms.ID),
		Content: content, StopReason: stop, Usage: anUsage{x.p.inputTokens, out}}
}

// anthropicModelName turns a Bedrock id such as
// us.anthropic.claude-sonnet-4-5-20250929-v1:0 into Anthropic's model name
// claude-sonnet-4-5-20250929, as Claude reports it in its responses.
func anthropicModelName(id string) string {
	if i := strings.Index(id, "anthropic."); i >= 0 {
		id = id[i+len("anthropic."):]
	}
	if i := strings.LastIndex(id, "-v"); i > 0 {
		id = id[:i]
	}
	return id
}
