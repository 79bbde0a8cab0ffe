package text

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAlphabet(t *testing.T) {
	if len(gsmDefault) != 127 {
		t.Fatalf("default alphabet has %d characters, want 127 (128 less the escape)", len(gsmDefault))
	}
	for r, want := range map[rune]byte{'@': 0x00, '£': 0x01, '\n': 0x0A, 'Δ': 0x10, 'É': 0x1F, ' ': 0x20, '¤': 0x24, '0': 0x30, '¡': 0x40, 'A': 0x41, '§': 0x5F, '¿': 0x60, 'a': 0x61, 'à': 0x7F} {
		if got := gsmDefault[r]; got != want {
			t.Errorf("%q = 0x%02x, want 0x%02x", r, got, want)
		}
	}
}

func TestCount(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		enc      Encoding
		segments int
	}{
		{"ascii", "Your code is 123456", GSM7, 1},
		{"gsm specials", "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà", GSM7, 1},
		{"160 gsm", strings.Repeat("a", 160), GSM7, 1},
		{"161 gsm", strings.Repeat("a", 161), GSM7, 2},
		{"306 gsm", strings.Repeat("a", 306), GSM7, 2},
		{"307 gsm", strings.Repeat("a", 307), GSM7, 3},
		{"80 extension chars fill one", strings.Repeat("€", 80), GSM7, 1},
		{"81 extension chars need two", strings.Repeat("€", 81), GSM7, 2},
		{"emoji", "Thanks 😀", UCS2, 1},
		{"cyrillic", "Привет", UCS2, 1},
		{"70 ucs2", strings.Repeat("ж", 70), UCS2, 1},
		{"71 ucs2", strings.Repeat("ж", 71), UCS2, 2},
		{"35 emoji = 70 units", strings.Repeat("😀", 35), UCS2, 1},
		{"36 emoji", strings.Repeat("😀", 36), UCS2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, n, err := Count(tt.text)
			if err != nil || enc != tt.enc || n != tt.segments {
				t.Fatalf("Count = %v, %d, %v; want %v, %d", enc, n, err, tt.enc, tt.segments)
			}
		})
	}
	if _, _, err := Count(""); err != ErrEmpty {
		t.Errorf("Count(\"\") error = %v, want ErrEmpty", err)
	}
}

func TestSplitKeepsEscapesAndSurrogatesWhole(t *testing.T) {
	// 152 plain septets then '€' (2 septets): the escape pair must not straddle.
	_, parts, err := Split(strings.Repeat("a", 152)+"€"+strings.Repeat("b", 10), 7, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || len(parts[0].Payload) != 152 || !bytes.HasPrefix(parts[1].Payload, []byte{esc, 0x65}) {
		t.Fatalf("parts: %d, first %d septets, second starts % x", len(parts), len(parts[0].Payload), parts[1].Payload[:2])
	}
	// 66 units then an emoji (2 units): the surrogate pair moves to part two.
	_, parts, err = Split(strings.Repeat("ж", 66)+"😀"+strings.Repeat("ж", 10), 7, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || len(parts[0].Payload) != 132 || !bytes.HasPrefix(parts[1].Payload, []byte{0xD8, 0x3D, 0xDE, 0x00}) {
		t.Fatalf("parts: %d, first %d octets, second starts % x", len(parts), len(parts[0].Payload), parts[1].Payload[:4])
	}
}

func TestSplitHeaders(t *testing.T) {
	_, parts, err := Split(strings.Repeat("x", 400), 0xAB, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	for i, p := range parts {
		want := []byte{0x05, 0x00, 0x03, 0xAB, 3, byte(i + 1)}
		if !bytes.Equal(p.UDH, want) {
			t.Errorf("part %d UDH % x, want % x", i, p.UDH, want)
		}
	}
	_, single, _ := Split("short", 1, 10)
	if len(single) != 1 || single[0].UDH != nil || string(single[0].Payload) != "short" {
		t.Errorf("single part = %+v", single)
	}
	if _, _, err := Split(strings.Repeat("x", 400), 1, 2); err == nil {
		t.Error("Split with too few segments allowed: no error")
	}
}

func TestEncodeGSM7(t *testing.T) {
	got, err := EncodeGSM7("a{€}@")
	if err != nil || !bytes.Equal(got, []byte{0x61, esc, 0x28, esc, 0x65, esc, 0x29, 0x00}) {
		t.Fatalf("EncodeGSM7 = % x, %v", got, err)
	}
	if _, err := EncodeGSM7("ж"); err == nil {
		t.Error("EncodeGSM7 of Cyrillic: no error")
	}
}

func joinParts(parts []Part) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p.Payload...)
	}
	return b
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"hello", strings.Repeat("€", 100), strings.Repeat("😀ж", 50), "a\x00b", "@£$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" || !utf8.ValidString(s) {
			return
		}
		enc, parts, err := Split(s, 1, 1000)
		if err != nil {
			if len(s) > 255*67 {
				return // legitimately too long
			}
			t.Fatalf("Split(%q): %v", s, err)
		}
		_, n, _ := Count(s)
		if n != len(parts) {
			t.Fatalf("Count says %d segments, Split made %d", n, len(parts))
		}
		got, err := Decode(DataCoding(enc), joinParts(parts))
		if err != nil || got != s {
			t.Fatalf("round trip of %q gave %q, %v", s, got, err)
		}
		for i, p := range parts {
			limit := 160
			if enc == UCS2 {
				limit = 140
			}
			if len(parts) > 1 {
				limit -= 7
				if enc == UCS2 {
					limit = 134
				}
			}
			if len(p.Payload) > limit {
				t.Fatalf("part %d has %d octets, over %d", i, len(p.Payload), limit)
			}
		}
	})
}

func FuzzDecode(f *testing.F) {
	f.Add(uint8(0), []byte{0x1b, 0x65, 0x41})
	f.Add(uint8(8), []byte{0xd8, 0x3d})
	f.Fuzz(func(t *testing.T, dc uint8, b []byte) {
		_, _ = Decode(dc, b) // must not panic
	})
}

func BenchmarkCount(b *testing.B) {
	s := strings.Repeat("Your code is 123456. ", 10)
	for b.Loop() {
		_, _, _ = Count(s)
	}
}

func BenchmarkSplit(b *testing.B) {
	s := strings.Repeat("Your code is 123456. ", 10)
	for b.Loop() {
		_, _, _ = Split(s, 1, 10)
	}
}
