// Package persist projects document events from the DOCS stream into the
// PostgreSQL read model (documents, document_events, assessments), and
// chat events from the CHAT stream into chat_sessions and chat_messages
// (see chat.go: a fold in stream order rather than a merge).
//
// The projection is idempotent and order-independent: every event is
// recorded once by its id, a document's status only moves forward in
// (run, rank), and facts carried by late events are merged rather than
// dropped. Redeliveries, duplicates, out-of-order arrival and concurrent
// handlers therefore all converge on the same rows, which lets the consumer
// run with any concurrency and lets the read model be rebuilt by replaying
// the stream.
package persist
