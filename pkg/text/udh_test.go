package text

import (
	"bytes"
	"testing"
)

func TestSplitUDH(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		c    Concat
		ok   bool
		body string
	}{
		{"8-bit reference", []byte{5, 0x00, 3, 0x2A, 3, 2, 'h', 'i'}, Concat{Ref: 0x2A, Total: 3, Seq: 2}, true, "hi"},
		{"16-bit reference", []byte{6, 0x08, 4, 0x01, 0x02, 2, 1, 'x'}, Concat{Ref: 0x0102, Total: 2, Seq: 1}, true, "x"},
		{"after another element", []byte{8, 0x0A, 1, 0xFF, 0x00, 3, 7, 2, 2, 'y'}, Concat{Ref: 7, Total: 2, Seq: 2}, true, "y"},
		{"no concatenation element", []byte{3, 0x0A, 1, 0xFF, 'z'}, Concat{}, false, "z"},
		{"sequence past total", []byte{5, 0x00, 3, 1, 2, 3, 'a'}, Concat{}, false, "a"},
		{"sequence zero", []byte{5, 0x00, 3, 1, 2, 0, 'a'}, Concat{}, false, "a"},
		{"one part", []byte{5, 0x00, 3, 1, 1, 1, 'a'}, Concat{}, false, "a"},
		{"header longer than the message", []byte{9, 0x00, 3}, Concat{}, false, "\x09\x00\x03"},
		{"empty", nil, Concat{}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok, body := SplitUDH(tc.in)
			if c != tc.c || ok != tc.ok || !bytes.Equal(body, []byte(tc.body)) {
				t.Fatalf("SplitUDH(% x) = %+v, %v, %q; want %+v, %v, %q", tc.in, c, ok, body, tc.c, tc.ok, tc.body)
			}
		})
	}
}

// The header is a handset's: any octets must split without a panic, and
// the body is always the message's tail.
func FuzzSplitUDH(f *testing.F) {
	f.Add([]byte{5, 0x00, 3, 0x2A, 3, 2, 'h'})
	f.Add([]byte{6, 0x08, 4, 1, 2, 2, 1})
	f.Add([]byte{0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok, body := SplitUDH(b)
		if !bytes.HasSuffix(b, body) {
			t.Fatalf("body %q is not the tail of % x", body, b)
		}
		if ok != (c.Total > 1) || (ok && (c.Seq < 1 || c.Seq > c.Total)) {
			t.Fatalf("SplitUDH(% x) = %+v, %v", b, c, ok)
		}
	})
}

func TestEncodingName(t *testing.T) {
	for dc, want := range map[uint8]string{0x00: "gsm7", 0x01: "latin1", 0x03: "latin1", 0x08: "ucs2", 0x04: "binary", 0x02: "binary", 0x05: "binary", 0xF0: "gsm7", 0xF4: "binary"} {
		if got := EncodingName(dc); got != want {
			t.Errorf("EncodingName(0x%02x) = %q, want %q", dc, got, want)
		}
	}
}
