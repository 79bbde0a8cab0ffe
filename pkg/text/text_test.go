package text

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAlphabetSize(t *testing.T) {
	basic, extended := 0, 0
	count := func(c gsmCode) {
		switch {
		case c.ok && c.extended:
			extended++
		case c.ok:
			basic++
		}
	}
	for _, c := range asciiCodes {
		count(c)
	}
	for _, c := range otherCodes {
		count(c)
	}
	if basic != 127 || extended != 10 {
		t.Fatalf("%d default and %d extension characters, want 127 (128 less the escape) and 10", basic, extended)
	}
}

func TestEncodeGSM7(t *testing.T) {
	tests := []struct {
		in   string
		want []byte // nil: no GSM-7 encoding
	}{
		{"Hello 123", []byte("Hello 123")},
		{"@£$¥", []byte{0x00, 0x01, 0x02, 0x03}},
		{"èéùìòÇ\nØø\rÅå", []byte{0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F}},
		{"Δ_ΦΓΛΩΠΨΣΘΞ", []byte{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A}},
		{"ÆæßÉ", []byte{0x1C, 0x1D, 0x1E, 0x1F}},
		{"¤¡ÄÖÑÜ§¿äöñüà", []byte{0x24, 0x40, 0x5B, 0x5C, 0x5D, 0x5E, 0x5F, 0x60, 0x7B, 0x7C, 0x7D, 0x7E, 0x7F}},
		{"{}[]~\\^|€\f", []byte{esc, 0x28, esc, 0x29, esc, 0x3C, esc, 0x3E, esc, 0x3D, esc, 0x2F, esc, 0x14, esc, 0x40, esc, 0x65, esc, 0x0A}},
		{"a{€}@", []byte{0x61, esc, 0x28, esc, 0x65, esc, 0x29, 0x00}},
		{"Привет", nil},
		{"ok 😀", nil},
		{"`", nil},
		{"\x1b", nil}, // the escape itself is not a character
		{"\t", nil},
	}
	for _, tt := range tests {
		got, err := EncodeGSM7(tt.in)
		if tt.want == nil {
			if err == nil {
				t.Errorf("EncodeGSM7(%q) = % x, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("EncodeGSM7(%q) = % x, %v; want % x", tt.in, got, err, tt.want)
		}
	}
}

func TestCount(t *testing.T) {
	type countCase struct {
		name     string
		text     string
		enc      Encoding
		segments int
	}
	a := func(n int) string { return strings.Repeat("a", n) }
	tests := []countCase{
		{"ascii", "Your code is 123456", GSM7, 1},
		{"gsm specials", "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà", GSM7, 1},
		{"160 gsm", a(160), GSM7, 1},
		{"161 gsm", a(161), GSM7, 2},
		{"153*2 gsm", a(306), GSM7, 2},
		{"153*2+1 gsm", a(307), GSM7, 3},
		{"153*3 gsm", a(459), GSM7, 3},
		{"153*3+1 gsm", a(460), GSM7, 4},
		{"159 + extension = 161 septets", a(159) + "€", GSM7, 2},
		{"158 + extension = 160 septets", a(158) + "€", GSM7, 1},
		{"extension pair pushed to a third part", a(305) + "€", GSM7, 3},
		{"emoji", "Thanks 😀", UCS2, 1},
		{"one emoji makes 160 ascii ucs2", a(159) + "😀", UCS2, 3},
		{"backtick is not gsm", "a`b", UCS2, 1},
		{"cyrillic", "Привет", UCS2, 1},
		{"70 ucs2", strings.Repeat("ж", 70), UCS2, 1},
		{"71 ucs2", strings.Repeat("ж", 71), UCS2, 2},
		{"67*2 ucs2", strings.Repeat("ж", 134), UCS2, 2},
		{"67*2+1 ucs2", strings.Repeat("ж", 135), UCS2, 3},
		{"35 emoji = 70 units", strings.Repeat("😀", 35), UCS2, 1},
		{"36 emoji", strings.Repeat("😀", 36), UCS2, 2},
		{"66 units + emoji does not fit 67", strings.Repeat("ж", 66) + "😀" + strings.Repeat("ж", 4), UCS2, 2},
		{"surrogate pair pushed to a third part", strings.Repeat("ж", 133) + "😀", UCS2, 3},
	}
	for _, c := range "{}[]~\\^|€\f" {
		// Two septets each: 80 fill a single segment.
		tests = append(tests,
			countCase{"80 × " + string(c), strings.Repeat(string(c), 80), GSM7, 1},
			countCase{"81 × " + string(c), strings.Repeat(string(c), 81), GSM7, 2})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, n, err := Count(tt.text)
			if err != nil || enc != tt.enc || n != tt.segments {
				t.Fatalf("Count = %v, %d, %v; want %v, %d", enc, n, err, tt.enc, tt.segments)
			}
			if got := Choose(tt.text); got != tt.enc {
				t.Errorf("Choose = %v, want %v", got, tt.enc)
			}
		})
	}
	if _, _, err := Count(""); !errors.Is(err, ErrEmpty) {
		t.Errorf("Count(\"\") error = %v, want ErrEmpty", err)
	}
}

func TestSplitLayout(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	zh := func(n int) string { return strings.Repeat("ж", n) }
	tests := []struct {
		name   string
		text   string
		enc    Encoding
		sizes  []int  // payload octets per part
		second []byte // the second part starts with these octets
	}{
		{"160 fit one", a(160), GSM7, []int{160}, nil},
		{"161", a(161), GSM7, []int{153, 8}, nil},
		{"escape pair straddling moves on", a(152) + "€" + a(10), GSM7, []int{152, 12}, []byte{esc, 0x65, 'a'}},
		{"escape pair right after a full part", a(153) + "€" + a(10), GSM7, []int{153, 12}, []byte{esc, 0x65, 'a'}},
		{"escape pair ending a part", a(151) + "€" + a(8), GSM7, []int{153, 8}, []byte("aaaaaaaa")},
		{"70 ucs2", zh(70), UCS2, []int{140}, nil},
		{"71 ucs2", zh(71), UCS2, []int{134, 8}, nil},
		{"surrogate pair at 67 moves on", zh(66) + "😀" + zh(10), UCS2, []int{132, 24}, []byte{0xD8, 0x3D, 0xDE, 0x00}},
		{"surrogate pair ending a part", zh(65) + "😀" + zh(10), UCS2, []int{134, 20}, []byte{0x04, 0x36}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, parts, err := Split(tt.text, 0x42, 10)
			if err != nil || enc != tt.enc {
				t.Fatalf("Split = %v, %v; want %v", enc, err, tt.enc)
			}
			var sizes []int
			for _, p := range parts {
				sizes = append(sizes, len(p.Payload))
			}
			if !equalInts(sizes, tt.sizes) {
				t.Fatalf("part sizes %v, want %v", sizes, tt.sizes)
			}
			if tt.second != nil && !bytes.HasPrefix(parts[1].Payload, tt.second) {
				t.Errorf("second part starts % x, want % x", parts[1].Payload[:len(tt.second)], tt.second)
			}
			checkParts(t, tt.text, enc, parts, 0x42)
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSplitHeadersAndLimits(t *testing.T) {
	_, parts, err := Split(strings.Repeat("x", 400), 0xABCD, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	for i, p := range parts {
		// 8-bit reference: the low octet of ref.
		if want := []byte{0x05, 0x00, 0x03, 0xCD, 3, byte(i + 1)}; !bytes.Equal(p.UDH, want) {
			t.Errorf("part %d UDH % x, want % x", i, p.UDH, want)
		}
	}
	enc, single, err := Split("short", 1, 1)
	if err != nil || enc != GSM7 || len(single) != 1 || single[0].UDH != nil || string(single[0].Payload) != "short" {
		t.Errorf("single part = %v %+v %v", enc, single, err)
	}

	tests := []struct {
		name    string
		text    string
		max     int
		wantErr error
	}{
		{"more than allowed", strings.Repeat("x", 400), 2, ErrTooLong},
		{"exactly allowed", strings.Repeat("x", 400), 3, nil},
		{"255 parts", strings.Repeat("x", 153*255), 1000, nil},
		{"256 parts never", strings.Repeat("x", 153*255+1), 1000, ErrTooLong},
		{"empty", "", 10, ErrEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := Split(tt.text, 1, tt.max); !errors.Is(err, tt.wantErr) {
				t.Errorf("Split error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// corpus is texts of every shape the pipeline meets.
var corpus = []string{
	"Your code is 123456",
	"@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà",
	"Prices: {10€} [sale] ~50% off \\o/ ^_^ a|b \f",
	strings.Repeat("Black Friday: 30% off everything at acme.example! ", 12),
	strings.Repeat("€", 500),
	strings.Repeat("a€", 300),
	"Ваш код подтверждения: 4821. Никому его не сообщайте.",
	strings.Repeat("Ваш код 😀 ", 40),
	strings.Repeat("😀", 200),
	"混合 text with 中文 and emoji 🎉🎉 and GSM €",
	"👩‍👩‍👧‍👦 family, flags 🇬🇧🇫🇷, keycap 1️⃣",
	"\x00 NUL and \x1b ESC are not GSM characters",
	"\uFFFD replacement, \u00a0 no-break space",
	"𝄞 music, 𠜎 CJK extension B",
}

func TestRoundTripCorpus(t *testing.T) {
	for _, s := range corpus {
		enc, n, err := Count(s)
		if err != nil {
			t.Fatal(err)
		}
		gotEnc, parts, err := Split(s, 0x99, MaxParts)
		if err != nil || gotEnc != enc || len(parts) != n {
			t.Fatalf("Split(%.20q) = %v, %d parts, %v; Count said %v, %d", s, gotEnc, len(parts), err, enc, n)
		}
		checkParts(t, s, enc, parts, 0x99)
	}
}

// checkParts asserts what a carrier relies on: every part fits its
// segment, decodes on its own (no character cut in two), carries a correct
// header, and the parts together are s.
func checkParts(t *testing.T, s string, enc Encoding, parts []Part, ref uint16) {
	t.Helper()
	limit := limits[enc].single
	if len(parts) > 1 {
		limit = limits[enc].part
	}
	var joined strings.Builder
	for i, p := range parts {
		if len(p.Payload) == 0 || len(p.Payload) > limit {
			t.Fatalf("part %d has %d octets, limit %d", i, len(p.Payload), limit)
		}
		got, err := Decode(DataCoding(enc), p.Payload)
		if err != nil {
			t.Fatalf("part %d does not decode alone: %v (% x)", i, err, p.Payload)
		}
		joined.WriteString(got)
		var want []byte
		if len(parts) > 1 {
			want = []byte{0x05, 0x00, 0x03, byte(ref), byte(len(parts)), byte(i + 1)}
		}
		if !bytes.Equal(p.UDH, want) {
			t.Fatalf("part %d UDH % x, want % x", i, p.UDH, want)
		}
	}
	if joined.String() != s {
		t.Fatalf("parts decode to %q, want %q", joined.String(), s)
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		dc   uint8
		in   []byte
		want string
		err  bool
	}{
		{"gsm7", 0x00, []byte("Hello"), "Hello", false},
		{"gsm7 specials", 0x00, []byte{0x00, 0x01, 0x02, 0x11, 0x1B, 0x65}, "@£$_€", false},
		{"gsm7 escape escape shows a space", 0x00, []byte{0x1B, 0x1B, 'a'}, " a", false},
		{"gsm7 undefined extension shows the default character", 0x00, []byte{0x1B, 'A'}, "A", false},
		{"gsm7 trailing escape", 0x00, []byte{'a', 0x1B}, "", true},
		{"gsm7 octet over 0x7f", 0x00, []byte{'a', 0x80}, "", true},
		{"gsm7 escaped octet over 0x7f", 0x00, []byte{0x1B, 0xE5}, "", true},
		{"ia5", 0x01, []byte("id:1 stat:DELIVRD"), "id:1 stat:DELIVRD", false},
		{"latin-1", 0x03, []byte{'c', 'a', 'f', 0xE9, ' ', 0xA3}, "café £", false},
		{"ucs2 with surrogates", 0x08, []byte{0x00, 0x41, 0xD8, 0x3D, 0xDE, 0x00}, "A😀", false},
		{"ucs2 lone surrogate", 0x08, []byte{0xD8, 0x3D}, "\uFFFD", false},
		{"ucs2 odd length", 0x08, []byte{0x00, 0x41, 0x00}, "", true},
		{"8-bit 0x04", 0x04, []byte{0xFF, 0x00}, "\xff\x00", false},
		{"8-bit 0x02", 0x02, []byte{0x80}, "\x80", false},
		{"class 0xF0 gsm7", 0xF0, []byte{0x00}, "@", false},
		{"class 0xF5 8-bit", 0xF5, []byte{0x00}, "\x00", false},
		{"general 0x11 gsm7", 0x11, []byte{0x02}, "$", false},
		{"general 0x18 ucs2", 0x18, []byte{0x04, 0x36}, "ж", false},
		{"general 0x15 8-bit", 0x15, []byte{0x01}, "\x01", false},
		{"general compressed", 0x24, []byte{0x01}, "", true},
		{"message waiting 0xC8 gsm7", 0xC8, []byte{0x01}, "£", false},
		{"message waiting 0xE8 ucs2", 0xE8, []byte{0x00, 0xE9}, "é", false},
		{"cyrillic iso-8859-5 unsupported", 0x06, []byte{0xB0}, "", true},
		{"empty", 0x00, nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.dc, tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("Decode(0x%02x, % x) = %q, %v; want %q, error %v", tt.dc, tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

// TestDecodeExact: the same as Decode but for UCS-2 surrogates, which must
// pair.
func TestDecodeExact(t *testing.T) {
	tests := []struct {
		name string
		dc   uint8
		in   []byte
		want string
		err  bool
	}{
		{"pair", 0x08, []byte{0x00, 0x41, 0xD8, 0x3D, 0xDE, 0x00}, "A😀", false},
		{"message waiting ucs2 pair", 0xE8, []byte{0xD8, 0x3D, 0xDE, 0x00}, "😀", false},
		{"lone high", 0x08, []byte{0x00, 0x41, 0xD8, 0x3D}, "", true},
		{"lone low", 0x08, []byte{0xDE, 0x00, 0x00, 0x41}, "", true},
		{"high then not low", 0x08, []byte{0xD8, 0x3D, 0x00, 0x41}, "", true},
		{"two highs", 0x08, []byte{0xD8, 0x3D, 0xD8, 0x3D, 0xDE, 0x00}, "", true},
		{"reversed pair", 0x08, []byte{0xDE, 0x00, 0xD8, 0x3D}, "", true},
		{"odd length", 0x08, []byte{0x00, 0x41, 0x00}, "", true},
		{"gsm7 untouched", 0x00, []byte{0x00}, "@", false},
		{"8-bit untouched", 0x04, []byte{0xD8, 0x3D}, "\xd8=", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeExact(tt.dc, tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("DecodeExact(0x%02x, % x) = %q, %v; want %q, error %v", tt.dc, tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

// FuzzDecodeExact: what DecodeExact accepts, Decode reads the same, and a
// UCS-2 text it accepts is valid UTF-8 without a replacement character the
// octets did not hold.
func FuzzDecodeExact(f *testing.F) {
	f.Add(uint8(0x08), []byte{0xD8, 0x3D, 0xDE, 0x00})
	f.Add(uint8(0x08), []byte{0xD8, 0x3D})
	f.Add(uint8(0x08), []byte{0xFF, 0xFD})
	f.Add(uint8(0x00), []byte("hi"))
	f.Fuzz(func(t *testing.T, dc uint8, b []byte) {
		exact, err := DecodeExact(dc, b)
		if err != nil {
			return
		}
		loose, _ := Decode(dc, b)
		if exact != loose {
			t.Fatalf("DecodeExact %q, Decode %q", exact, loose)
		}
		if alphabetOf(dc) == alphaUCS2 && strings.Count(exact, "\uFFFD") != unitsFFFD(b) {
			t.Fatalf("% x decoded to %q with a replacement character", b, exact)
		}
	})
}

// unitsFFFD counts the U+FFFD the UCS-2 octets hold themselves.
func unitsFFFD(b []byte) int {
	n := 0
	for i := 0; i+1 < len(b); i += 2 {
		if b[i] == 0xFF && b[i+1] == 0xFD {
			n++
		}
	}
	return n
}

func FuzzSplit(f *testing.F) {
	for _, s := range corpus {
		f.Add(s, uint16(7))
	}
	f.Add(strings.Repeat("a", 152)+"€", uint16(0xFFFF))
	f.Fuzz(func(t *testing.T, s string, ref uint16) {
		if s == "" || !utf8.ValidString(s) {
			return
		}
		enc, n, err := Count(s)
		if err != nil {
			t.Fatalf("Count(%q): %v", s, err)
		}
		gotEnc, parts, err := Split(s, ref, MaxParts)
		if n > MaxParts {
			if !errors.Is(err, ErrTooLong) {
				t.Fatalf("%d segments: Split error %v, want ErrTooLong", n, err)
			}
			return
		}
		if err != nil || gotEnc != enc || len(parts) != n {
			t.Fatalf("Split = %v, %d parts, %v; Count said %v, %d", gotEnc, len(parts), err, enc, n)
		}
		checkParts(t, s, enc, parts, ref)
	})
}

func FuzzDecode(f *testing.F) {
	f.Add(uint8(0), []byte{0x1b, 0x65, 0x41})
	f.Add(uint8(0), []byte{0x1b})
	f.Add(uint8(8), []byte{0xd8, 0x3d})
	f.Add(uint8(3), []byte{0xff})
	f.Add(uint8(0xF6), []byte{0xff})
	f.Fuzz(func(t *testing.T, dc uint8, b []byte) {
		s, err := Decode(dc, b)
		if err == nil && alphabetOf(dc) != alphaOctets && !utf8.ValidString(s) {
			t.Fatalf("Decode(0x%02x, % x) = %q: not UTF-8", dc, b, s)
		}
	})
}

var benchTexts = []struct{ name, text string }{
	{"gsm7-1", "Your code is 123456. Do not share it with anyone."},
	{"gsm7-3", strings.Repeat("Black Friday: 30% off everything at acme.example! ", 8)},
	{"ucs2-3", strings.Repeat("Ваш код 😀 подтверждения. ", 7)},
}

func BenchmarkCount(b *testing.B) {
	for _, bt := range benchTexts {
		b.Run(bt.name, func(b *testing.B) {
			b.SetBytes(int64(len(bt.text)))
			for b.Loop() {
				_, _, _ = Count(bt.text)
			}
		})
	}
}

func BenchmarkSplit(b *testing.B) {
	for _, bt := range benchTexts {
		b.Run(bt.name, func(b *testing.B) {
			b.SetBytes(int64(len(bt.text)))
			b.ReportAllocs()
			for b.Loop() {
				_, _, _ = Split(bt.text, 1, MaxParts)
			}
		})
	}
}
