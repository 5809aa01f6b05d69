// Package analyzer asks Bedrock for a risk assessment of each extracted
// document and publishes document.analyzed. The stage consumes
// document.extracted; model calls go through the router (fallback chain,
// cluster-wide limits), answers are cached by content, long documents are
// analyzed chunk by chunk and merged.
package analyzer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/aiprism/prism/analyzer/assessment"
	"github.com/aiprism/prism/analyzer/prompt"
	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/platform/spaces"
	"github.com/aiprism/prism/streams"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Objects is the part of the claim-check store the analyzer needs.
type Objects interface {
	Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error)
}

// Router is the model router as the stage uses it.
type Router interface {
	Converse(ctx context.Context, req router.Request) (*router.Result, error)
	Preferred(ctx context.Context, fits func(router.Model) bool) (router.Model, error)
	Chain() router.Chain
}

// StageConfig bounds what one analysis may ask for.
type StageConfig struct {
	MaxOutputTokens int // per call
	// ChunkBytes caps a chunk; below the cap, a chunk is as large as the
	// chosen model's context window allows (see chunkBytes).
	ChunkBytes int
	MaxChars   int // longest text read from the store
	// CacheScope is whose documents a cached answer serves:
	// CacheScopeOwner ("" too) or CacheScopeShared.
	CacheScope string
}

// Result cache scopes (ANALYZER_CACHE_SCOPE).
const (
	// CacheScopeOwner: an answer serves only documents of the owner it
	// was given for. A hit would otherwise tell one owner that another
	// analyzed the same text (its speed and cost show it).
	CacheScopeOwner = "owner"
	// CacheScopeShared: an answer serves every owner; for single-tenant
	// deployments, where the same text is not worth paying for twice.
	CacheScopeShared = "shared"
)

// Stage is the analyzer's event handler.
type Stage struct {
	objects Objects
	router  Router
	cache   *Cache
	pub     *streams.Publisher
	cfg     StageConfig
	log     *streams.Log // to see whether a redelivered event's work is done; nil = always work
	// smallest and largest chunk size over the chain's models (0: no model
	// has room for a chunk): a text no longer than smallest, or a chain
	// whose models all cut alike, needs no look at the shared state.
	smallest, largest int
	// check validates answers against the schema that toolSchema carries
	// to the model; both are built once, here.
	check      *assessment.Validator
	toolSchema document.Interface
	// promptTokens estimates what every request carries besides the
	// document: the system prompt and the tool definition.
	promptTokens int
	// budget holds each owner to a daily number of model tokens; nil =
	// none.
	budget *quota.Budget
}

// StageOption configures a Stage beyond its StageConfig.
type StageOption func(*Stage)

// WithBudget holds each owner's documents to a daily model-token budget
// (ANALYZER_DAILY_TOKENS_PER_USER): the input and output tokens of every
// model call are counted on the owner's day, and once the day's budget is
// spent, a document that needs the model fails as budget-spent instead
// of calling it.
func WithBudget(b *quota.Budget) StageOption { return func(s *Stage) { s.budget = b } }

// NewStage returns the analysis stage. cache may be nil.
func NewStage(objects Objects, r Router, cache *Cache, pub *streams.Publisher, cfg StageConfig, js jetstream.JetStream, opts ...StageOption) *Stage {
	check := assessment.MustNewValidator()
	s := &Stage{objects: objects, router: r, cache: cache, pub: pub, cfg: cfg, check: check,
		toolSchema:   document.NewLazyDocument(check.ToolSchema()),
		promptTokens: router.EstimateTokens(prompt.System) + router.EstimateTokens(string(check.Schema())),
	}
	if js != nil {
		s.log = streams.NewLog(js)
	}
	for _, o := range opts {
		o(s)
	}
	for _, m := range r.Chain() {
		if s.fits(m) {
			size := s.chunkBytes(m)
			if s.smallest == 0 || size < s.smallest {
				s.smallest = size
			}
			s.largest = max(s.largest, size)
		}
	}
	return s
}

// Handle analyzes the document of one extracted event.
func (s *Stage) Handle(ctx context.Context, ev *streams.Event) error {
	var ex streams.ExtractedData
	if err := ev.Decode(&ex); err != nil {
		return streams.Permanent(streams.ClassBadEvent, err)
	}
	if !blob.OwnedBy(ex.Text.Key, ev.Owner) {
		// A forged or mistaken event must not make this stage read another
		// owner's text, nor send it to a model.
		return streams.Permanent(streams.ClassForeignObject, fmt.Errorf("text %q is not an object of owner %s", ex.Text.Key, ev.Owner))
	}
	m := streams.MetaOf(ev)
	if done, err := s.done(ctx, m); err != nil || done {
		return err // analyzed before: a redelivery changes nothing
	}
	// Each attempt announces itself: after a wait for model capacity the
	// document is analyzing again, and says so.
	attempt := ""
	if n := streams.Delivery(ctx); n > 1 {
		attempt = "-" + strconv.FormatUint(n, 10)
	}
	if err := s.progress(ctx, m, "analyze-started"+attempt, streams.ProgressData{Step: "started", Status: streams.StatusAnalyzing}); err != nil {
		return err
	}
	text, err := s.readText(ctx, ex.Text)
	if err != nil {
		return err
	}
	ctx, spent := withMeter(ctx)
	result, err := s.analyze(ctx, m, text)
	// Whatever the outcome, the model was paid for every call made.
	s.count(ctx, m, spent.tokens.Load())
	var busy *router.BusyError
	if errors.As(err, &busy) {
		// Waiting is not failing: the status says so, and the event comes
		// back when the earliest model has capacity again.
		if perr := s.progress(ctx, m, "queued"+attempt, streams.ProgressData{Step: "queued", Status: streams.StatusQueued, Message: "waiting for model capacity"}); perr != nil {
			zerolog.Ctx(ctx).Warn().Err(perr).Msg("queued status not published")
		}
		return streams.RetryAfter(busy.RetryAfter, err)
	}
	if err != nil {
		return err
	}
	result.TextSHA256 = ex.Text.SHA256
	if _, err := s.pub.Emit(ctx, m, streams.Analyzed, "", result); err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Int("score", result.Score).Str("level", result.Level).Str("model", result.Model).
		Bool("cached", result.Cached).Int("attempts", len(result.Attempts)).Float64("cost_usd", result.CostUSD).Msg("analyzed")
	return nil
}

// count adds the tokens this delivery spent to the owner's day. A count
// that cannot be written is logged, not retried: redoing the analysis
// would spend more than it counts.
func (s *Stage) count(ctx context.Context, m streams.Meta, tokens int64) {
	if s.budget == nil || tokens == 0 {
		return
	}
	if err := s.budget.Spend(ctx, m.Owner, m.DocumentID, m.Run, streams.Delivery(ctx), tokens); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Int64("tokens", tokens).Msg("model tokens not counted against the daily budget")
	}
}

// checkBudget refuses to call the model for a document of an owner whose
// daily budget is spent.
func (s *Stage) checkBudget(ctx context.Context, owner string) error {
	if s.budget == nil {
		return nil
	}
	err := s.budget.Check(ctx, owner)
	var ex *quota.Exceeded
	if errors.As(err, &ex) {
		return streams.Permanentf(streams.ClassBudgetSpent,
			"The daily model budget of this account (%d tokens) is spent; re-analyze the document after it renews at midnight UTC.", ex.Max)
	}
	return err // the bucket did not answer: retried
}

// meter adds up the tokens of the model calls of one delivery.
type meter struct{ tokens atomic.Int64 }

type meterKey struct{}

func withMeter(ctx context.Context) (context.Context, *meter) {
	m := &meter{}
	return context.WithValue(ctx, meterKey{}, m), m
}

// metered counts a call's tokens on ctx's meter, if it has one.
func metered(ctx context.Context, res *router.Result) {
	if m, ok := ctx.Value(meterKey{}).(*meter); ok {
		m.tokens.Add(int64(res.InputTokens + res.OutputTokens))
	}
}

// done reports whether this run of the document was analyzed already.
func (s *Stage) done(ctx context.Context, m streams.Meta) (bool, error) {
	if s.log == nil {
		return false, nil
	}
	return s.log.Emitted(ctx, m, streams.Analyzed)
}

func (s *Stage) progress(ctx context.Context, m streams.Meta, key string, p streams.ProgressData) error {
	p.Stage = streams.StageAnalyze
	_, err := s.pub.Emit(ctx, m, streams.Progress, key, p)
	return err
}

func (s *Stage) readText(ctx context.Context, ref streams.ObjectRef) (string, error) {
	rc, _, err := s.objects.Get(ctx, ref.Key)
	if errors.Is(err, blob.ErrNotFound) {
		return "", streams.Permanent(streams.ClassTextMissing, err)
	}
	if err != nil {
		return "", fmt.Errorf("read text: %w", err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, int64(s.cfg.MaxChars)*4+1))
	if err != nil {
		return "", fmt.Errorf("read text: %w", err)
	}
	return string(raw), nil
}

// call is one assessed piece of text with what it cost.
type call struct {
	Assessment   assessment.Assessment `json:"assessment"`
	Model        string                `json:"model"`
	Attempts     []streams.Attempt     `json:"attempts"`
	InputTokens  int                   `json:"input_tokens"`
	OutputTokens int                   `json:"output_tokens"`
	CostUSD      float64               `json:"cost_usd"`
}

// analyze assesses the whole text: in one call when it fits, otherwise
// chunk by chunk (map) and one final call over the merged findings (reduce).
func (s *Stage) analyze(ctx context.Context, m streams.Meta, text string) (streams.AnalyzedData, error) {
	if strings.TrimSpace(text) == "" {
		return streams.AnalyzedData{}, streams.Permanentf(streams.ClassEmptyText, "the document has no text to analyze")
	}
	return cached(ctx, s.cache, "doc", s.cacheScope(m.Owner), text, func(d *streams.AnalyzedData) {
		// Nothing was spent on this run: the original run's figures stay
		// with the original run.
		d.Cached, d.CostUSD, d.Attempts, d.InputTokens, d.OutputTokens = true, 0, nil, 0, 0
	}, func() (streams.AnalyzedData, string, error) {
		out, err := s.analyzeAnew(ctx, m, text)
		return out, out.Model, err
	})
}

// cacheScope is the cache scope of owner's documents ("" = shared).
func (s *Stage) cacheScope(owner string) string {
	if s.cfg.CacheScope == CacheScopeShared {
		return ""
	}
	return owner
}

// cached returns the cached answer of kind for text in scope, with what it
// cost cleared by spent, or computes one with fn and caches it under the
// model fn reports: a redelivery or a re-upload never pays twice.
func cached[T any](ctx context.Context, c *Cache, kind, scope, text string, spent func(*T), fn func() (T, string, error)) (T, error) {
	sha := TextSHA256(text)
	var v T
	if ok, err := c.Get(ctx, kind, scope, sha, prompt.Version, &v); err != nil {
		return v, err
	} else if ok {
		spent(&v)
		return v, nil
	}
	v, model, err := fn()
	if err != nil {
		return v, err
	}
	if err := c.Put(ctx, kind, scope, sha, prompt.Version, model, v); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("kind", kind).Msg("result not cached")
	}
	return v, nil
}

// analyzeAnew is analyze without the cache.
func (s *Stage) analyzeAnew(ctx context.Context, m streams.Meta, text string) (streams.AnalyzedData, error) {
	if err := s.checkBudget(ctx, m.Owner); err != nil {
		return streams.AnalyzedData{}, err
	}
	size, err := s.chunkSize(ctx, len(text))
	if err != nil {
		return streams.AnalyzedData{}, routeError(err, nil)
	}
	chunks := Split(text, size)
	var parts []call
	for i, chunk := range chunks {
		assess := s.assessCached // a chunk done before a redelivery is not paid again
		if len(chunks) == 1 {
			assess = func(ctx context.Context, text, _, _ string) (call, error) { return s.assess(ctx, text, text) }
		}
		c, err := assess(ctx, chunk, "chunk", s.cacheScope(m.Owner))
		if err != nil {
			return streams.AnalyzedData{}, err
		}
		parts = append(parts, c)
		if len(chunks) > 1 {
			if err := s.progress(ctx, m, "chunk-"+strconv.Itoa(i+1), streams.ProgressData{
				Step: "chunk", Status: streams.StatusAnalyzing, Done: i + 1, Total: len(chunks),
				Message: fmt.Sprintf("analyzed part %d of %d", i+1, len(chunks)),
			}); err != nil {
				zerolog.Ctx(ctx).Warn().Err(err).Msg("chunk progress not published")
			}
		}
	}
	final := parts[0]
	if len(parts) > 1 {
		var err error
		if final, err = s.reduce(ctx, text, parts); err != nil {
			return streams.AnalyzedData{}, err
		}
	}
	a := final.Assessment
	// The score shown is derived from the findings by a documented rule
	// (assessment.Score), never taken on the model's word.
	a.OverallScore, a.RiskLevel = assessment.Score(a.RiskFactors)
	raw, err := json.Marshal(a)
	if err != nil {
		return streams.AnalyzedData{}, fmt.Errorf("encode assessment: %w", err)
	}
	out := streams.AnalyzedData{
		Assessment: raw, Score: a.OverallScore, Level: a.RiskLevel, Model: final.Model, PromptVersion: prompt.Version,
	}
	calls := parts // one document: the one call is also the final one
	if len(parts) > 1 {
		calls = append(parts, final) // map calls, then the reduce call
	}
	for _, p := range calls {
		out.Attempts = append(out.Attempts, p.Attempts...)
		out.InputTokens += p.InputTokens
		out.OutputTokens += p.OutputTokens
		out.CostUSD += p.CostUSD
	}
	return out, nil
}

// chunkSize is how long a chunk of a text of n bytes may be: sized for the
// model the router would choose now, so a chunk never goes to a model
// whose window it does not fit (the router skips those), and a
// smaller-window model serves once it is the one chosen at the start of an
// analysis. The shared state is read only when the choice matters.
func (s *Stage) chunkSize(ctx context.Context, n int) (int, error) {
	if s.smallest > 0 && (n <= s.smallest || s.smallest == s.largest) {
		return s.largest, nil
	}
	chosen, err := s.router.Preferred(ctx, s.fits)
	if err != nil {
		return 0, err
	}
	return s.chunkBytes(chosen), nil
}

// assessCached assesses one text, reusing a cached answer for it in scope.
func (s *Stage) assessCached(ctx context.Context, text, kind, scope string) (call, error) {
	return cached(ctx, s.cache, kind, scope, text, func(c *call) {
		c.Attempts, c.CostUSD, c.InputTokens, c.OutputTokens = nil, 0, 0, 0
	}, func() (call, string, error) {
		c, err := s.assess(ctx, text, text)
		return c, c.Model, err
	})
}

// reduce makes one final call over the merged findings of all chunks: the
// model writes the summary and recommendations of the whole document; the
// findings themselves are the union of the chunks' (deduplicated), so no
// grounded evidence is lost in the summary step.
func (s *Stage) reduce(ctx context.Context, text string, parts []call) (call, error) {
	merged := mergeFactors(parts)
	var b strings.Builder
	b.WriteString("The document was too long for one request and was assessed in parts. These are the findings of all parts, as JSON; each evidence quote is verbatim from the document.\n")
	findings, _ := json.Marshal(merged)
	b.Write(findings)
	c, err := s.assess(ctx, b.String(), b.String())
	if err != nil {
		return c, err
	}
	c.Assessment.RiskFactors = merged
	seen := map[string]bool{}
	concerns := []assessment.ComplianceConcern{} // the schema wants a list, never null
	for _, p := range append(parts, c) {
		for _, cc := range p.Assessment.ComplianceConcerns {
			if k := cc.Regulation + "\x00" + cc.Concern; !seen[k] {
				seen[k] = true
				concerns = append(concerns, cc)
			}
		}
	}
	c.Assessment.ComplianceConcerns = concerns
	return c, nil
}

// mergeFactors unions the chunks' findings, dropping repeats of the same
// evidence in the same category.
func mergeFactors(parts []call) []assessment.RiskFactor {
	seen := map[string]bool{}
	out := []assessment.RiskFactor{} // the schema wants a list, never null
	for _, p := range parts {
		for _, f := range p.Assessment.RiskFactors {
			k := f.Category + "\x00" + spaces.Collapse(f.Evidence)
			if !seen[k] {
				seen[k] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// assess makes a forced-tool call over docText and checks the answer's
// evidence against groundText. A cut-off answer (max_tokens) is incomplete,
// never an answer: it is retried with twice the budget, up to
// maxBudgetGrowth times the configured one. An answer that fails
// validation gets one repair turn with the problems listed.
func (s *Stage) assess(ctx context.Context, docText, groundText string) (call, error) {
	user := prompt.User("", docText, prompt.Nonce())
	msgs := []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: user}}}}
	budget := s.cfg.MaxOutputTokens
	var total call
	repaired := false
	for {
		res, err := s.router.Converse(ctx, s.request(msgs, budget))
		if res != nil {
			metered(ctx, res)
			total.Attempts = append(total.Attempts, res.Attempts...)
			total.InputTokens += res.InputTokens
			total.OutputTokens += res.OutputTokens
			total.CostUSD += res.CostUSD
			total.Model = res.Model.ID
		}
		if err != nil {
			return total, routeError(err, total.Attempts)
		}
		if res.Output.StopReason == types.StopReasonMaxTokens {
			if budget >= maxBudgetGrowth*s.cfg.MaxOutputTokens {
				return total, streams.Permanentf(streams.ClassIncompleteOutput, "the model's answer was cut off at %d output tokens", budget)
			}
			budget *= 2
			continue
		}
		block, raw, err := toolUse(res.Output)
		if err != nil {
			return total, streams.Permanent(streams.ClassInvalidAssessment, err)
		}
		a, err := s.check.Parse(raw, groundText)
		if err == nil {
			total.Assessment = a
			return total, nil
		}
		if repaired {
			return total, streams.Permanent(streams.ClassInvalidAssessment, fmt.Errorf("after one repair attempt: %w", err))
		}
		repaired = true
		// One repair turn: show the model its answer and what is wrong.
		msgs = append(msgs,
			types.Message{Role: types.ConversationRoleAssistant, Content: []types.ContentBlock{&types.ContentBlockMemberToolUse{Value: block}}},
			types.Message{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{
				ToolUseId: block.ToolUseId,
				Status:    types.ToolResultStatusError,
				Content: []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberText{
					Value: err.Error() + "\nCall " + assessment.ToolName + " again with a corrected assessment; quote evidence verbatim from the document.",
				}},
			}}}},
		)
	}
}

func routeError(err error, attempts []streams.Attempt) error {
	var perm *router.PermanentError
	switch {
	case errors.Is(err, router.ErrTooLarge):
		return streams.Permanent(streams.ClassTooLargeForModels, err)
	case errors.As(err, &perm):
		return streams.Permanent(streams.ClassModelRejected, err)
	}
	return err // busy or transient: the stage decides
}

func (s *Stage) request(msgs []types.Message, maxOut int) router.Request {
	input := s.promptTokens
	for _, m := range msgs {
		for _, c := range m.Content {
			if t, ok := c.(*types.ContentBlockMemberText); ok {
				input += router.EstimateTokens(t.Value)
			} else {
				input += 500
			}
		}
	}
	return router.Request{
		InputTokens:     input,
		MaxOutputTokens: maxOut,
		Build: func(m router.Model, maxOut int) *bedrockruntime.ConverseInput {
			return &bedrockruntime.ConverseInput{
				ModelId:         aws.String(m.ID),
				System:          []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: prompt.System}},
				Messages:        msgs,
				InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(int32(maxOut)), Temperature: aws.Float32(0)},
				ToolConfig: &types.ToolConfiguration{
					Tools: []types.Tool{&types.ToolMemberToolSpec{Value: types.ToolSpecification{
						Name:        aws.String(assessment.ToolName),
						Description: aws.String("Record the structured risk assessment of the document."),
						InputSchema: &types.ToolInputSchemaMemberJson{Value: s.toolSchema},
					}}},
					ToolChoice: &types.ToolChoiceMemberTool{Value: types.SpecificToolChoice{Name: aws.String(assessment.ToolName)}},
				},
			}
		},
	}
}

// minChunkBytes: a model whose window leaves less room than this for the
// document is not worth chunking for.
const minChunkBytes = 2000

// maxBudgetGrowth bounds how far a cut-off answer's output budget grows.
const maxBudgetGrowth = 4

// fits reports whether m has room for a chunk at all.
func (s *Stage) fits(m router.Model) bool { return s.room(m) >= minChunkBytes }

// room is how much document text one call may carry on model m: its
// context window less the system prompt, the tool schema, the framing and
// a repair turn, and less the largest output the answer may grow to (a
// cut-off answer is retried with up to four times the output budget), at
// EstimateTokens' 4 bytes a token.
func (s *Stage) room(m router.Model) int {
	overhead := s.promptTokens + 1000
	output := min(maxBudgetGrowth*s.cfg.MaxOutputTokens, m.MaxOutputTokens)
	return max((m.ContextTokens-overhead-output)*4, 0)
}

// chunkBytes is the chunk size for model m: its room, within the
// configured cap (long calls reserve much quota and take long).
func (s *Stage) chunkBytes(m router.Model) int {
	if s.cfg.ChunkBytes > 0 {
		return min(s.room(m), s.cfg.ChunkBytes)
	}
	return s.room(m)
}

// toolUse returns the forced tool call and its JSON input.
func toolUse(out *bedrockruntime.ConverseOutput) (types.ToolUseBlock, []byte, error) {
	msg, ok := out.Output.(*types.ConverseOutputMemberMessage)
	if !ok {
		return types.ToolUseBlock{}, nil, errors.New("model returned no message")
	}
	for _, block := range msg.Value.Content {
		if tu, ok := block.(*types.ContentBlockMemberToolUse); ok && aws.ToString(tu.Value.Name) == assessment.ToolName {
			raw, err := tu.Value.Input.MarshalSmithyDocument()
			if err != nil {
				return types.ToolUseBlock{}, nil, fmt.Errorf("decode tool input: %w", err)
			}
			return tu.Value, raw, nil
		}
	}
	return types.ToolUseBlock{}, nil, errors.New("model did not call " + assessment.ToolName)
}
