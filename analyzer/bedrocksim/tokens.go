package bedrocksim

// EstimateTokens is the simulator's token count for s: one token per four
// bytes of UTF-8, rounded up (ceil(len(s)/4)). Real tokenizers average about
// four characters per English token; the rule is exported so the analyzer can
// budget requests by exactly the count the simulator will charge.
func EstimateTokens(s string) int {
	return (len(s) + 3) / 4
}
