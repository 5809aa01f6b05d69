// Package chat answers the risk-advice assistant's questions: it consumes
// chat.asked events, grounds each answer in the user's documents, streams
// it through the model router and ends it with one stored event.
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
package chat
