package router

import (
	"testing"
	"unicode/utf8"

	"github.com/sluice-sms/sluice/pkg/config"
)

func TestKeywords(t *testing.T) {
	k, err := newKeywords(map[string]config.Keywords{
		"en": {Stop: []string{"STOP", "unsubscribe"}, Start: []string{"START"}},
		"fr": {Stop: []string{"ARRÊT", "stop"}, Start: []string{"Démarrer"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text string
		want keyword
	}{
		{"STOP", keywordStop},
		{"  stop.", keywordStop},
		{"Stop sending me these", keywordStop},
		{"Unsubscribe!", keywordStop},
		{"arrêt", keywordStop},
		{"start", keywordStart},
		{"DÉMARRER", keywordStart},
		{"please stop", keywordNone},
		{"stopper", keywordNone},
		{"", keywordNone},
		{"   ", keywordNone},
	}
	for _, tt := range tests {
		if got, _ := k.classify(tt.text); got != tt.want {
			t.Errorf("classify(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestKeywordsDefaultsAndConflicts(t *testing.T) {
	k, err := newKeywords(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := k.classify("unsubscribe"); got != keywordStop {
		t.Errorf("default keywords: UNSUBSCRIBE = %v", got)
	}
	if _, err := newKeywords(map[string]config.Keywords{"en": {Stop: []string{"GO"}, Start: []string{"go"}}}); err == nil {
		t.Error("a word both stop and start was accepted")
	}
}

// MO texts are whatever subscribers type: classifying one must never fail
// and must agree with the first word's folded form.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"STOP", "stop please", " Arrêt!", "", "\x00\xff", "START 1"} {
		f.Add(s)
	}
	k, err := newKeywords(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		kind, word := k.classify(text)
		if kind != keywordNone && k[word] != kind {
			t.Fatalf("classify(%q) = %v, %q, but the table says %v", text, kind, word, k[word])
		}
		if utf8.ValidString(text) && !utf8.ValidString(word) {
			t.Fatalf("classify(%q) made invalid UTF-8 %q", text, word)
		}
	})
}
