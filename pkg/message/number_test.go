package message

import "testing"

func TestNormalizeNumber(t *testing.T) {
	for in, want := range map[string]string{
		"+447700900123":    "+447700900123",
		"447700900123":     "+447700900123",
		"00447700900123":   "+447700900123",
		"+44 7700 900-123": "+447700900123",
		"ACME":             "ACME",
		"":                 "",
	} {
		if got := NormalizeNumber(in); got != want {
			t.Errorf("NormalizeNumber(%q) = %q, want %q", in, got, want)
		}
	}
}
