package text

import (
	"fmt"
	"strings"
	"unicode/utf16"
)

// EncodeGSM7 returns s as unpacked GSM-7 septets, extension characters
// escaped; an error names the first character GSM-7 cannot carry.
func EncodeGSM7(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if b, ok := gsmDefault[r]; ok {
			out = append(out, b)
		} else if b, ok := gsmExtension[r]; ok {
			out = append(out, esc, b)
		} else {
			return nil, fmt.Errorf("%q has no GSM-7 encoding", r)
		}
	}
	return out, nil
}

// Decode reads a short_message by its data_coding: GSM-7 unpacked (0x00),
// IA5/ASCII (0x01), Latin-1 (0x03), UCS-2/UTF-16BE (0x08); anything else is
// taken as 8-bit data and returned as is.
func Decode(dataCoding uint8, b []byte) (string, error) {
	switch dataCoding {
	case 0x00:
		return decodeGSM7(b)
	case 0x01:
		return string(b), nil
	case 0x03:
		rs := make([]rune, len(b))
		for i, c := range b {
			rs[i] = rune(c)
		}
		return string(rs), nil
	case 0x08:
		if len(b)%2 != 0 {
			return "", fmt.Errorf("UCS-2 text of odd length %d", len(b))
		}
		units := make([]uint16, len(b)/2)
		for i := range units {
			units[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		}
		return string(utf16.Decode(units)), nil
	}
	return string(b), nil
}

func decodeGSM7(b []byte) (string, error) {
	var sb strings.Builder
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c > 0x7F {
			return "", fmt.Errorf("octet 0x%02x at %d is not a GSM-7 septet", c, i)
		}
		if c == esc {
			i++
			if i == len(b) {
				return "", fmt.Errorf("escape at the end of the text")
			}
			r, ok := gsmExtensionRunes[b[i]]
			if !ok {
				r = ' ' // 03.38: an unknown extension shows as a space
			}
			sb.WriteRune(r)
			continue
		}
		sb.WriteRune(gsmDefaultRunes[c])
	}
	return sb.String(), nil
}
