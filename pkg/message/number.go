package message

import (
	"strings"
	"unicode"
)

// NormalizeNumber brings a subscriber's address from an SMSC to the E.164
// form of a message's destination: "+" and digits. What is not a number
// (an alphanumeric sender) is returned without its spaces and dashes.
func NormalizeNumber(addr string) string {
	addr = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '-' {
			return -1
		}
		return r
	}, addr)
	switch {
	case strings.HasPrefix(addr, "+"):
		return addr
	case strings.HasPrefix(addr, "00"):
		return "+" + addr[2:]
	case addr != "" && strings.IndexFunc(addr, func(r rune) bool { return r < '0' || r > '9' }) < 0:
		return "+" + addr
	}
	return addr
}
