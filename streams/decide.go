package streams

import (
	"fmt"
	"time"
)

// action is what the runner does with a message once its handler returned.
type action int

const (
	actAck   action = iota // the effect is durable: acknowledge
	actRetry               // NakWithDelay(delay): deliver again later
	actFail                // publish document.failed (stages), then TermWithReason: the DLQ keeps it
)

// policy is what decides a delivery besides the handler's outcome: the
// consumer's limits and the backoff.
type policy struct {
	maxDeliver int           // give up at this delivery (0 or less: never by count)
	maxAge     time.Duration // give up on an event this old (0: never by age)
	backoff    func(n uint64) time.Duration
}

func policyOf(c Consumer, opts RunnerOptions) policy {
	return policy{maxDeliver: c.MaxDeliver, maxAge: c.MaxAge, backoff: opts.Backoff}
}

// attempt is one handler run as the runner saw it.
type attempt struct {
	err       error         // nil: the effect is durable
	canceled  bool          // the context the handler ran on had ended (shutdown)
	delivered uint64        // which delivery this was (1 for the first)
	age       time.Duration // since the event was stored
}

// decision is what to do with the message, and what to say about it.
type decision struct {
	action  action
	delay   time.Duration // actRetry
	outcome string        // metric label: ack, retry, wait or fail
	class   string        // actFail: the failure class
	reason  string        // actFail: for people, a sentence of ours (the error itself is logged)
}

// decide is the delivery rule every stage shares, as a function of the
// handler's outcome, the delivery and the policy alone:
//   - success: ack;
//   - the handler's context ended (shutdown): retry at once (a NAK without
//     delay, for another replica), whatever the error says. Work cut
//     short is never the document's failure, nor an attempt to give up on;
//   - a PermanentError: fail with its class and the sentence it tells users;
//   - a transient error at the last allowed delivery, or of an event older
//     than maxAge: fail as gave-up.
//
// The reason never quotes the error: the runner logs that, with the
// document and correlation ids, for operators;
//   - otherwise retry, after the delay a RetryError asks for (a wait,
//     e.g. for model capacity) or else after backoff(delivered).
func decide(p policy, a attempt) decision {
	if a.err == nil {
		return decision{action: actAck, outcome: "ack"}
	}
	if a.canceled {
		// Handed back at once: another replica takes it now.
		return decision{action: actRetry, outcome: "handback"}
	}
	permanent, class, reason, after := classify(a.err)
	if permanent {
		return decision{action: actFail, outcome: "fail", class: class, reason: reason}
	}
	last := p.maxDeliver > 0 && a.delivered >= uint64(p.maxDeliver)
	tooOld := p.maxAge > 0 && a.age >= p.maxAge
	if last || tooOld {
		age := ""
		if tooOld {
			age = a.age.Round(time.Second).String() + " and "
		}
		why := "it kept failing for a reason on our side, not in the document"
		if after > 0 {
			why = "it kept waiting for capacity that did not come free in time"
		}
		return decision{action: actFail, outcome: "fail", class: ClassGaveUp,
			reason: fmt.Sprintf("Gave up after %s%d attempts: %s.", age, a.delivered, why)}
	}
	if after > 0 {
		return decision{action: actRetry, delay: after, outcome: "wait"}
	}
	return decision{action: actRetry, delay: p.backoff(a.delivered), outcome: "retry"}
}

// unpublished is the decision when the document.failed event of a failing
// delivery cannot be published: without it the document would look stuck,
// so the message is kept and tried again soon.
func unpublished(p policy) decision {
	return decision{action: actRetry, delay: p.backoff(1), outcome: "retry"}
}
