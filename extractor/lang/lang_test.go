package lang

import "testing"

func TestGuess(t *testing.T) {
	for text, want := range map[string]string{
		"The Supplier shall indemnify the Customer against all claims and costs arising from the use of the services, and this Agreement is governed by the laws of the State of Delaware.": "en",
		"Der Lenkungskreis hat die Ausschreibung für die Notebooks beschlossen. Die Umsetzung wird von der IT-Abteilung mit dem Einkauf vorbereitet und ist bis Mai abgeschlossen.":         "de",
		"RR-000001 | 42 | 17.5 | 2024-03-01": "",
		"":                                   "",
	} {
		if got := Guess(text); got != want {
			t.Errorf("Guess(%.30q) = %q, want %q", text, got, want)
		}
	}
}
