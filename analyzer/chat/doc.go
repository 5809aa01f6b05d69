// Package chat answers the risk-advice assistant's questions: it consumes
// chat.asked events, grounds each answer in the user's documents, streams
// it through the model router and ends it with one stored event.
//
// # Answering
//
// Answerer.Handle folds the session from stream CHAT; an answer that has
// ended already (a redelivery, or an API's watchdog that gave up on it)
// or whose session is deleted is left alone. Otherwise the answer is
// written live on the session's core NATS subject: started at once, a
// heartbeat every second until the end (also while waiting for model
// capacity or the first token), and each piece of text as a delta with
// its byte offset; sync requests for the answer get the text so far. The
// owner's daily token budget is checked before the model is called and
// the tokens are counted after, keyed by the answer. The router streams
// the answer with interactive priority, falling back to another model
// only before the first delta. The answer ends with exactly one stored
// event: answered, with the passages it cites; or failed with what was
// written (an interrupted stream, marked incomplete) or with only the
// reason (every model busy: a chat does not wait minutes; too large;
// rejected; budget spent). Trouble on our side (NATS, the store) is
// retried by the runner, and at its last delivery ends as failed too.
//
// # Retrieval
//
// A session bound to a document is grounded in passages of the
// document's extracted text, chosen lexically: the text is split into
// passages (Split: paragraphs, with pages, sheets and headings beginning
// new ones, long ones cut near MaxPassageBytes) and the question's terms
// are scored against them with Okapi BM25 (k1 = 1.2, b = 0.75). The best
// passages with a positive score are numbered 1..k in the prompt; each
// carries its 1-based lines of the text and its page or sheet, which an
// answer's citations return.
//
// # History
//
// The conversation so far is rebuilt from the session's events
// (streams.Transcript) and sent within the model's context window by this
// rule (Turns, HistoryBudget, Fit, Messages):
//
//   - a turn is an earlier question with its answer, complete or
//     incomplete (an interrupted answer is kept and marked so); questions
//     whose answer failed with no text, and anything after the answer
//     being written, are left out;
//   - the history budget is ANALYZER_CHAT_HISTORY_TOKENS (default 8000),
//     but at most what the smallest context window of the model chain
//     leaves after the output budget and this turn (system prompt,
//     grounding material and question), so that every model the router
//     may fall back to can take the request;
//   - turns are taken newest first while they fit; the first that does
//     not fit and every older one are dropped, and one line at the start
//     of the conversation says how many were left out.
//
// Tokens are estimated as everywhere in the analyzer (router.EstimateTokens).
package chat
