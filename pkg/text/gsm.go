package text

// gsmDefault is the GSM 03.38 default alphabet: rune to septet.
var gsmDefault = func() map[rune]byte {
	const table = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	m := make(map[rune]byte, 128)
	i := 0
	for _, r := range table {
		if r != 0x1b { // the escape is not a character
			m[r] = byte(i)
		}
		i++
	}
	return m
}()

// gsmExtension is the basic extension table, reached through the escape
// septet 0x1B: each of these characters costs two septets.
var gsmExtension = map[rune]byte{
	'\f': 0x0A, '^': 0x14, '{': 0x28, '}': 0x29, '\\': 0x2F,
	'[': 0x3C, '~': 0x3D, ']': 0x3E, '|': 0x40, '€': 0x65,
}

// septet tables for decoding.
var (
	gsmDefaultRunes   = invert(gsmDefault)
	gsmExtensionRunes = invert(gsmExtension)
)

func invert(m map[rune]byte) map[byte]rune {
	out := make(map[byte]rune, len(m))
	for r, b := range m {
		out[b] = r
	}
	return out
}
