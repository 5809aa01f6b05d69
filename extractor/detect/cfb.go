package detect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"unicode/utf16"
)

// cfbMagic starts every OLE2 compound file (legacy Office, and encrypted
// OOXML, which Office wraps in a compound file).
var cfbMagic = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}

const (
	endOfChain = 0xFFFFFFFE
	maxSectors = 1 << 20 // walk at most this many directory sectors
)

// cfbNames lists the stream and storage names in a compound file's
// directory. It reads only the header, the FAT sectors it needs and the
// directory chain, with every chain bounded, so a looping or truncated
// file fails fast.
func cfbNames(raw []byte) ([]string, error) {
	if len(raw) < 512 || !bytes.HasPrefix(raw, cfbMagic) {
		return nil, errors.New("not a compound file")
	}
	shift := binary.LittleEndian.Uint16(raw[0x1E:])
	if shift != 9 && shift != 12 {
		return nil, errors.New("bad sector size")
	}
	secSize := 1 << shift
	sector := func(n uint32) []byte {
		off := (int64(n) + 1) << shift
		if n >= 0xFFFFFFFA || off+int64(secSize) > int64(len(raw)) {
			return nil
		}
		return raw[off : off+int64(secSize)]
	}
	// FAT sector numbers: 109 in the header, the rest in the DIFAT chain.
	var fatSecs []uint32
	for i := 0; i < 109; i++ {
		if s := binary.LittleEndian.Uint32(raw[0x4C+4*i:]); s < 0xFFFFFFFA {
			fatSecs = append(fatSecs, s)
		}
	}
	difat := binary.LittleEndian.Uint32(raw[0x44:])
	for hops := 0; difat < 0xFFFFFFFA && hops < maxSectors; hops++ {
		b := sector(difat)
		if b == nil {
			break
		}
		per := secSize/4 - 1
		for i := 0; i < per; i++ {
			if s := binary.LittleEndian.Uint32(b[4*i:]); s < 0xFFFFFFFA {
				fatSecs = append(fatSecs, s)
			}
		}
		difat = binary.LittleEndian.Uint32(b[4*per:])
	}
	next := func(n uint32) uint32 {
		per := uint32(secSize / 4)
		idx := n / per
		if int(idx) >= len(fatSecs) {
			return endOfChain
		}
		b := sector(fatSecs[idx])
		if b == nil {
			return endOfChain
		}
		return binary.LittleEndian.Uint32(b[4*(n%per):])
	}
	var names []string
	seen := map[uint32]bool{}
	for s := binary.LittleEndian.Uint32(raw[0x30:]); s < 0xFFFFFFFA && !seen[s] && len(seen) < maxSectors; s = next(s) {
		seen[s] = true
		b := sector(s)
		if b == nil {
			break
		}
		for e := 0; e+128 <= len(b); e += 128 {
			ent := b[e : e+128]
			nameLen := int(binary.LittleEndian.Uint16(ent[0x40:]))
			if ent[0x42] == 0 || nameLen < 2 || nameLen > 64 {
				continue
			}
			u := make([]uint16, 0, nameLen/2-1)
			for i := 0; i+1 < nameLen-2; i += 2 {
				u = append(u, binary.LittleEndian.Uint16(ent[i:]))
			}
			names = append(names, string(utf16.Decode(u)))
		}
	}
	if len(names) == 0 {
		return nil, errors.New("empty or unreadable directory")
	}
	return names, nil
}
