package xlsx

import (
	"testing"

	"github.com/aiprism/prism/extractor/corpus"
)

func BenchmarkLarge(b *testing.B) {
	raw := corpus.ReadFile(b, "large/risk-register-50k.openpyxl.xlsx")
	for i := 0; i < b.N; i++ {
		if _, _, _, err := extract(raw, 8_000_000); err != nil {
			b.Fatal(err)
		}
	}
}
