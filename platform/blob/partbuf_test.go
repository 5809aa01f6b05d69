package blob

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"testing/iotest"
)

func TestPartBufferHoldsEachPart(t *testing.T) {
	data := make([]byte, 3*maxChunk+12345)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(data)
	const part = maxChunk + 777 // parts end inside chunks
	var p partBuffer
	// One byte per Read: fill must keep reading until the part is full.
	r := iotest.OneByteReader(bytes.NewReader(data))
	for off := 0; off < len(data); off += part {
		want := data[off:min(off+part, len(data))]
		n, err := p.fill(r, part)
		if err != nil || n != int64(len(want)) {
			t.Fatalf("part at %d: fill = %d, %v; want %d bytes", off, n, err, len(want))
		}
		// Read, ReadAt and Seek across chunk boundaries agree with the data.
		if err := iotest.TestReader(p.reader(), want); err != nil {
			t.Fatalf("part at %d: %v", off, err)
		}
	}
	if n, err := p.fill(r, part); n != 0 || err != nil {
		t.Fatalf("after the end: fill = %d, %v", n, err)
	}
}

func TestPartBufferKeepsReaderErrors(t *testing.T) {
	short := &exactReader{r: bytes.NewReader(make([]byte, 10)), remain: 20}
	var p partBuffer
	if _, err := p.fill(short, 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a body shorter than declared: fill error %v, want io.ErrUnexpectedEOF", err)
	}
}

// The reason partBuffer exists: an 8 MiB part costs 8 MiB, once per
// upload, not the 16 MiB array (and 8 MiB of discarded smaller ones) of a
// bytes.Buffer.
func TestPartBufferAllocatesAboutOnePart(t *testing.T) {
	const part = partSize
	src := rand.NewChaCha8([32]byte{2})
	var p partBuffer
	before := totalAlloc()
	for range 4 {
		if _, err := p.fill(src, part); err != nil {
			t.Fatal(err)
		}
	}
	if got := totalAlloc() - before; got > part+part/16 {
		t.Fatalf("four %d MiB parts allocated %.1f MiB", part>>20, float64(got)/(1<<20))
	}
}

func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}
