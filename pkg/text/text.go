// Package text decides how an SMS text travels: GSM-7 when every character is
// in the GSM 03.38 alphabet (or its extension table), else UCS-2 (UTF-16, so
// emoji survive), and splits long texts into concatenated segments without
// cutting an escape sequence or a surrogate pair. Ingest and sender share it,
// so the segment count ingest reports is the one the carrier sees.
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

func (e Encoding) String() string {
	if e == UCS2 {
		return "ucs2"
	}
	return "gsm7"
}

// Segment sizes, in septets (GSM-7) or UTF-16 code units (UCS-2).
const (
	gsm7Single = 160
	gsm7Part   = 153 // 160 less the 6-octet (7-septet) concatenation header
	ucs2Single = 70
	ucs2Part   = 67
	esc        = 0x1B
	maxParts   = 255 // the 8-bit part counter of the concatenation header
)

// Errors.
var (
	ErrEmpty   = errors.New("text is empty")
	ErrTooLong = errors.New("text needs more segments than allowed")
)

// Part is one segment: the user data header (empty for a single-part text)
// and the payload, GSM-7 unpacked septets (one per octet, data_coding 0) or
// UTF-16BE.
type Part struct {
	UDH     []byte
	Payload []byte
}

// Choose returns GSM7 when every rune of s has a GSM-7 encoding, else UCS2.
func Choose(s string) Encoding {
	for _, r := range s {
		if _, ok := gsmDefault[r]; ok {
			continue
		}
		if _, ok := gsmExtension[r]; ok {
			continue
		}
		return UCS2
	}
	return GSM7
}

// Count returns the encoding of s and how many segments it takes.
func Count(s string) (Encoding, int, error) {
	if s == "" {
		return GSM7, 0, ErrEmpty
	}
	enc := Choose(s)
	units := unitsOf(s, enc)
	return enc, len(cut(units, enc)), nil
}

// Split encodes s and cuts it into parts of at most maxSegments, each with a
// concatenation header (8-bit reference ref) when there is more than one.
func Split(s string, ref uint16, maxSegments int) (Encoding, []Part, error) {
	if s == "" {
		return GSM7, nil, ErrEmpty
	}
	enc := Choose(s)
	chunks := cut(unitsOf(s, enc), enc)
	if len(chunks) > min(maxSegments, maxParts) {
		return enc, nil, fmt.Errorf("%w: %d > %d", ErrTooLong, len(chunks), min(maxSegments, maxParts))
	}
	parts := make([]Part, len(chunks))
	for i, c := range chunks {
		parts[i].Payload = c.bytes()
		if len(chunks) > 1 {
			parts[i].UDH = []byte{0x05, 0x00, 0x03, byte(ref), byte(len(chunks)), byte(i + 1)}
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

// unit is what may not be split, encoded: one GSM-7 character (one septet,
// or two with the escape) or one UTF-16 character (two or four octets).
type unit []byte

type chunk []unit

func (c chunk) bytes() []byte {
	var out []byte
	for _, u := range c {
		out = append(out, u...)
	}
	return out
}

func unitsOf(s string, enc Encoding) []unit {
	units := make([]unit, 0, len(s))
	for _, r := range s {
		if enc == GSM7 {
			if b, ok := gsmDefault[r]; ok {
				units = append(units, unit{b})
			} else {
				units = append(units, unit{esc, gsmExtension[r]})
			}
			continue
		}
		var u unit
		for _, w := range utf16.Encode([]rune{r}) {
			u = append(u, byte(w>>8), byte(w))
		}
		units = append(units, u)
	}
	return units
}

// cut groups units into segments of the encoding's sizes, counted in septets
// (GSM-7) or UTF-16 code units (UCS-2).
func cut(units []unit, enc Encoding) []chunk {
	single, part, perUnit := gsm7Single, gsm7Part, 1
	if enc == UCS2 {
		single, part, perUnit = ucs2Single, ucs2Part, 2
	}
	total := 0
	for _, u := range units {
		total += len(u) / perUnit
	}
	if total <= single {
		return []chunk{units}
	}
	var chunks []chunk
	var cur chunk
	size := 0
	for _, u := range units {
		n := len(u) / perUnit
		if size+n > part {
			chunks = append(chunks, cur)
			cur, size = nil, 0
		}
		cur = append(cur, u)
		size += n
	}
	return append(chunks, cur)
}
