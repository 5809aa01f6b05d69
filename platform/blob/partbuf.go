package blob

import (
	"errors"
	"io"
)

// Chunk sizes of a partBuffer: the first chunks are small so that a small
// document costs little, later ones are large so that a part of many
// megabytes is a short list.
const (
	minChunk       = 16 << 10
	maxChunk       = 1 << 20
	chunkDoublings = 6 // minChunk << 6 == maxChunk
)

// partBuffer holds one part of an upload as a list of chunks. Unlike a
// bytes.Buffer it never copies what it holds in order to grow, so reading
// a part of n bytes allocates about n bytes, once per upload: a
// bytes.Buffer filled to 8 MiB by ReadFrom ends with a 16 MiB array after
// discarding 8 MiB of smaller ones. Chunks are kept for the next part.
//
// Every chunk in use is full except the last one.
type partBuffer struct {
	chunks [][]byte
	n      int64 // bytes held
}

// fill replaces the contents with up to limit bytes from r, returning how
// many it holds. The end of r is not an error.
func (p *partBuffer) fill(r io.Reader, limit int64) (int64, error) {
	p.n = 0
	for i := 0; p.n < limit; i++ {
		if i == len(p.chunks) {
			p.chunks = append(p.chunks, make([]byte, chunkSize(i, limit-p.n)))
		}
		c := p.chunks[i][:min(int64(len(p.chunks[i])), limit-p.n)]
		m, err := readFull(r, c)
		p.n += int64(m)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return p.n, nil
			}
			return p.n, err
		}
	}
	return p.n, nil
}

// chunkSize is the size of the i-th chunk of a buffer that needs at most
// remain more bytes.
func chunkSize(i int, remain int64) int64 {
	size := int64(maxChunk)
	if i < chunkDoublings {
		size = minChunk << i
	}
	return min(size, remain)
}

// readFull reads len(b) bytes unless r ends (io.EOF) or fails first. Unlike
// io.ReadFull it returns r's errors unchanged, so a reader's own
// io.ErrUnexpectedEOF (a body shorter than declared) is never confused
// with a clean end.
func readFull(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ReadAt implements io.ReaderAt over the bytes held.
func (p *partBuffer) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("blob: negative offset")
	}
	n, start, pos := 0, int64(0), off
	for _, c := range p.chunks {
		if start >= p.n || n == len(b) {
			break
		}
		end := min(start+int64(len(c)), p.n)
		if pos >= start && pos < end {
			k := copy(b[n:], c[pos-start:end-start])
			n += k
			pos += int64(k)
		}
		start += int64(len(c))
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// reader is the bytes held as a seekable body, as the S3 client wants for
// checksums and retries.
func (p *partBuffer) reader() *io.SectionReader { return io.NewSectionReader(p, 0, p.n) }
