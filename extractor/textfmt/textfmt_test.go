package textfmt

import (
	"errors"
	"testing"
)

func TestDecode(t *testing.T) {
	got, err := Decode([]byte("\xef\xbb\xbfline one\r\nline two\rend"))
	if err != nil || got != "line one\nline two\nend" {
		t.Fatalf("Decode = %q, %v", got, err)
	}
	_, err = Decode([]byte("ok \xff bad"))
	var ie *InvalidError
	if !errors.As(err, &ie) || ie.Offset != 3 || !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("invalid: %v", err)
	}
	if _, err := Decode([]byte("a\x00b")); !errors.Is(err, ErrBinary) {
		t.Fatalf("binary: %v", err)
	}
}

func TestLooks(t *testing.T) {
	if !Looks([]byte("Grüße")) || !Looks([]byte("Gr\xc3")) || Looks([]byte("\x00abc")) || Looks([]byte("\xff\xfeabc")) {
		t.Fatal("Looks misjudged")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("hello\r\nworld"))
	f.Add([]byte("\xef\xbb\xbf\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err == nil && (len(s) > len(b)) {
			t.Fatalf("output longer than input")
		}
	})
}
