package text

// defaultAlphabet is the GSM 03.38 default alphabet in septet order; 0x1B is
// the escape to the extension table, not a character.
const defaultAlphabet = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

const esc = 0x1B

// extensionTable is the basic extension table, reached through the escape:
// each of these characters costs two septets.
var extensionTable = map[byte]rune{
	0x0A: '\f', 0x14: '^', 0x28: '{', 0x29: '}', 0x2F: '\\',
	0x3C: '[', 0x3D: '~', 0x3E: ']', 0x40: '|', 0x65: '€',
}

// gsmCode is a rune's GSM-7 encoding: its septet, and whether the escape
// comes first. The zero value means "no encoding".
type gsmCode struct {
	septet   byte
	extended bool
	ok       bool
}

var (
	// septetRunes decodes the default alphabet.
	septetRunes = func() (t [128]rune) {
		i := 0
		for _, r := range defaultAlphabet {
			t[i] = r
			i++
		}
		return t
	}()
	// asciiCodes (the fast path: most texts are ASCII) and otherCodes
	// encode the characters GSM-7 carries.
	asciiCodes, otherCodes = buildCodes()
)

func buildCodes() (ascii [128]gsmCode, other map[rune]gsmCode) {
	other = make(map[rune]gsmCode, 64)
	add := func(r rune, c gsmCode) {
		if r < 0x80 {
			ascii[r] = c
		} else {
			other[r] = c
		}
	}
	for s, r := range septetRunes {
		if s != esc {
			add(r, gsmCode{septet: byte(s), ok: true})
		}
	}
	for s, r := range extensionTable {
		add(r, gsmCode{septet: s, extended: true, ok: true})
	}
	return ascii, other
}

// lookup returns the GSM-7 encoding of r.
func lookup(r rune) gsmCode {
	if r >= 0 && r < 0x80 {
		return asciiCodes[r]
	}
	return otherCodes[r]
}
