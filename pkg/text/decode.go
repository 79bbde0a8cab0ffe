package text

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrUnsupportedCoding is returned by Decode for a data_coding it cannot
// read (compressed texts, national character sets).
var ErrUnsupportedCoding = errors.New("unsupported data_coding")

// alphabet is how a data_coding's octets are read.
type alphabet int

const (
	alphaGSM7 alphabet = iota
	alphaLatin1
	alphaUCS2
	alphaOctets
	alphaUnsupported
)

// alphabetOf reads data_coding as SMPP 3.4 defines 0x00–0x0F and GSM 03.38
// the coding groups above.
func alphabetOf(dc uint8) alphabet {
	switch {
	case dc == 0x00:
		return alphaGSM7
	case dc == 0x01 || dc == 0x03: // IA5 (ASCII), Latin-1: ASCII is a subset
		return alphaLatin1
	case dc == 0x02 || dc == 0x04:
		return alphaOctets
	case dc == 0x08:
		return alphaUCS2
	case dc < 0x10:
		return alphaUnsupported
	case dc < 0x40: // general data coding; bit 5: compressed
		if dc&0x20 != 0 {
			return alphaUnsupported
		}
		return [...]alphabet{alphaGSM7, alphaOctets, alphaUCS2, alphaUnsupported}[dc>>2&0x03]
	case dc >= 0xC0 && dc < 0xE0: // message waiting, GSM-7
		return alphaGSM7
	case dc >= 0xE0 && dc < 0xF0: // message waiting, UCS-2
		return alphaUCS2
	case dc >= 0xF0: // data coding / message class; bit 2: 8-bit
		if dc&0x04 != 0 {
			return alphaOctets
		}
		return alphaGSM7
	}
	return alphaUnsupported
}

// Decode reads a short_message by its data_coding: GSM-7 unpacked, IA5 and
// Latin-1, UCS-2 (UTF-16BE, surrogate pairs joined), and 8-bit data returned
// as is.
func Decode(dataCoding uint8, b []byte) (string, error) {
	switch alphabetOf(dataCoding) {
	case alphaGSM7:
		return decodeGSM7(b)
	case alphaLatin1:
		rs := make([]rune, len(b))
		for i, c := range b {
			rs[i] = rune(c)
		}
		return string(rs), nil
	case alphaUCS2:
		if len(b)%2 != 0 {
			return "", fmt.Errorf("UCS-2 text of odd length %d", len(b))
		}
		units := make([]uint16, len(b)/2)
		for i := range units {
			units[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		}
		return string(utf16.Decode(units)), nil
	case alphaOctets:
		return string(b), nil
	}
	return "", fmt.Errorf("%w 0x%02x", ErrUnsupportedCoding, dataCoding)
}

// DecodeExact is Decode for a text that must be sent as it came: a lone
// UTF-16 surrogate in UCS-2, which Decode shows as U+FFFD (right for a
// receipt's text, wrong for a message to a handset), is an error.
func DecodeExact(dataCoding uint8, b []byte) (string, error) {
	if alphabetOf(dataCoding) == alphaUCS2 && len(b)%2 == 0 {
		for i := 0; i < len(b); i += 2 {
			u := rune(b[i])<<8 | rune(b[i+1])
			switch {
			case !utf16.IsSurrogate(u):
			case u < 0xDC00 && i+3 < len(b) && utf16.DecodeRune(u, rune(b[i+2])<<8|rune(b[i+3])) != utf8.RuneError:
				i += 2 // a pair
			default:
				return "", fmt.Errorf("UCS-2 text holds a lone surrogate 0x%04X at octet %d", u, i)
			}
		}
	}
	return Decode(dataCoding, b)
}

func decodeGSM7(b []byte) (string, error) {
	var sb strings.Builder
	sb.Grow(len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c > 0x7F {
			return "", fmt.Errorf("octet 0x%02x at %d is not a GSM-7 septet", c, i)
		}
		if c != esc {
			sb.WriteRune(septetRunes[c])
			continue
		}
		i++
		if i == len(b) {
			return "", errors.New("GSM-7 text ends with an escape")
		}
		c = b[i]
		if c > 0x7F {
			return "", fmt.Errorf("octet 0x%02x at %d is not a GSM-7 septet", c, i)
		}
		r, ok := extensionTable[c]
		switch {
		case ok:
		case c == esc: // reserved for a further table: 03.38 shows a space
			r = ' '
		default: // 03.38: an undefined extension shows the default character
			r = septetRunes[c]
		}
		sb.WriteRune(r)
	}
	return sb.String(), nil
}
