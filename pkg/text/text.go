// Package text decides how an SMS text travels: GSM-7 when every character is
// in the GSM 03.38 alphabet (or its basic extension table), else UCS-2
// (UTF-16, so emoji survive), and splits long texts into concatenated
// segments without cutting an escape sequence or a surrogate pair. Ingest
// and sender share it, so the segment count ingest reports is the one the
// carrier sees.
//
// Texts are Go strings: invalid UTF-8 is read as U+FFFD, as range does.
package text

import (
	"errors"
	"fmt"
	"unicode/utf16"
)

// Encoding is the alphabet of a text on the wire.
type Encoding int

// Encodings.
const (
	GSM7 Encoding = iota
	UCS2
)

// String is the encoding's name in status events: "gsm7" or "ucs2".
func (e Encoding) String() string {
	if e == UCS2 {
		return "ucs2"
	}
	return "gsm7"
}

// Segment sizes in payload octets: GSM-7 unpacked is one septet per octet;
// UCS-2 is two octets per UTF-16 unit. A part of a long text gives up 6
// octets of its 140 to the concatenation header (7 septets once packed).
var limits = [...]struct{ single, part int }{
	GSM7: {single: 160, part: 153},
	UCS2: {single: 140, part: 134},
}

// MaxParts is the most parts a concatenated text can have: the header's
// part counter is one octet.
const MaxParts = 255

// Errors.
var (
	ErrEmpty   = errors.New("text is empty")
	ErrTooLong = errors.New("text needs more segments than allowed")
)

// Part is one segment: the user data header (nil for a single-part text)
// and the payload, GSM-7 unpacked septets (one per octet, data_coding 0) or
// UTF-16BE (data_coding 8).
type Part struct {
	UDH     []byte
	Payload []byte
}

// Choose returns GSM7 when every rune of s has a GSM-7 encoding, else UCS2.
func Choose(s string) Encoding {
	enc, _ := measure(s)
	return enc
}

// Count returns the encoding of s and how many segments it takes.
func Count(s string) (Encoding, int, error) {
	if s == "" {
		return GSM7, 0, ErrEmpty
	}
	enc, size := measure(s)
	if size <= limits[enc].single {
		return enc, 1, nil
	}
	return enc, len(partEnds(s, enc)), nil
}

// Split encodes s and cuts it into at most maxSegments parts (never more
// than MaxParts), each with a concatenation header carrying the low octet of
// ref when there is more than one.
func Split(s string, ref uint16, maxSegments int) (Encoding, []Part, error) {
	if s == "" {
		return GSM7, nil, ErrEmpty
	}
	enc, size := measure(s)
	ends := []int{size}
	if size > limits[enc].single {
		ends = partEnds(s, enc)
	}
	if most := min(maxSegments, MaxParts); len(ends) > most {
		return enc, nil, fmt.Errorf("%w: %d segments, at most %d", ErrTooLong, len(ends), most)
	}
	payload := appendEncoded(make([]byte, 0, size), s, enc)
	parts := make([]Part, len(ends))
	var udh []byte
	if len(ends) > 1 {
		udh = make([]byte, 0, 6*len(ends))
	}
	start := 0
	for i, end := range ends {
		parts[i].Payload = payload[start:end:end]
		start = end
		if udh != nil {
			// IEI 0x00: concatenated short message, 8-bit reference.
			udh = append(udh, 0x05, 0x00, 0x03, byte(ref), byte(len(ends)), byte(i+1))
			parts[i].UDH = udh[6*i : 6*i+6 : 6*i+6]
		}
	}
	return enc, parts, nil
}

// DataCoding is the SMPP data_coding of an encoding: 0x00 (the SMSC's
// default alphabet, GSM-7) or 0x08 (UCS-2).
func DataCoding(enc Encoding) uint8 {
	if enc == UCS2 {
		return 0x08
	}
	return 0x00
}

// EncodeGSM7 returns s as unpacked GSM-7 septets, extension characters
// escaped; an error names the first character GSM-7 cannot carry.
func EncodeGSM7(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i, r := range s {
		c := lookup(r)
		if !c.ok {
			return nil, fmt.Errorf("%q at byte %d has no GSM-7 encoding", r, i)
		}
		out = appendGSM(out, c)
	}
	return out, nil
}

// measure returns the encoding of s and its payload size in that encoding,
// in one pass.
func measure(s string) (Encoding, int) {
	septets, units := 0, 0
	enc := GSM7
	for _, r := range s {
		units += utf16.RuneLen(r)
		if enc == GSM7 {
			switch c := lookup(r); {
			case !c.ok:
				enc = UCS2
			case c.extended:
				septets += 2
			default:
				septets++
			}
		}
	}
	if enc == UCS2 {
		return UCS2, 2 * units
	}
	return GSM7, septets
}

// width is the payload size of r in enc.
func width(r rune, enc Encoding) int {
	if enc == UCS2 {
		return 2 * utf16.RuneLen(r)
	}
	if lookup(r).extended {
		return 2
	}
	return 1
}

// partEnds returns the payload offsets at which the parts of a long text
// end: each part as full as it can be without cutting a character (an escape
// pair or a surrogate pair) in two.
func partEnds(s string, enc Encoding) []int {
	limit := limits[enc].part
	var ends []int
	start, end := 0, 0
	for _, r := range s {
		w := width(r, enc)
		if end+w-start > limit {
			ends = append(ends, end)
			start = end
		}
		end += w
	}
	return append(ends, end)
}

func appendEncoded(b []byte, s string, enc Encoding) []byte {
	for _, r := range s { // range yields no surrogate halves, only whole runes
		if enc == GSM7 {
			b = appendGSM(b, lookup(r))
			continue
		}
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			b = append(b, byte(hi>>8), byte(hi), byte(lo>>8), byte(lo))
			continue
		}
		b = append(b, byte(r>>8), byte(r))
	}
	return b
}

func appendGSM(b []byte, c gsmCode) []byte {
	if c.extended {
		return append(b, esc, c.septet)
	}
	return append(b, c.septet)
}
