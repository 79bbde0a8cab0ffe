package router

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"unicode"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// allTenants is the tenant of an opt-out that concerns every tenant: an MO
// sent to an address no tenant is configured for.
const allTenants = "*"

// defaultKeywords apply when the configuration names none.
var defaultKeywords = map[string]config.Keywords{
	"en": {Stop: []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}, Start: []string{"START", "UNSTOP"}},
}

// keyword is what an MO asks for.
type keyword int

const (
	keywordNone keyword = iota
	keywordStop
	keywordStart
)

// keywords recognise opt-out and opt-in words, whatever the language.
type keywords map[string]keyword

func newKeywords(byLanguage map[string]config.Keywords) (keywords, error) {
	if len(byLanguage) == 0 {
		byLanguage = defaultKeywords
	}
	k := keywords{}
	add := func(lang, w string, kind keyword) error {
		w = fold(w)
		if w == "" {
			return fmt.Errorf("router.opt_out.keywords.%s: empty keyword", lang)
		}
		if prev, ok := k[w]; ok && prev != kind {
			return fmt.Errorf("router.opt_out.keywords.%s: %q is both a stop and a start keyword", lang, w)
		}
		k[w] = kind
		return nil
	}
	for lang, kw := range byLanguage {
		for _, w := range kw.Stop {
			if err := add(lang, w, keywordStop); err != nil {
				return nil, err
			}
		}
		for _, w := range kw.Start {
			if err := add(lang, w, keywordStart); err != nil {
				return nil, err
			}
		}
	}
	return k, nil
}

// classify reads the keyword an MO text starts with: its first word, in any
// case, with punctuation around it ignored ("Stop.", "stop!" and " STOP"
// all opt out; "stop sending me these" does too; "please stop" does not).
func (k keywords) classify(text string) (keyword, string) {
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return keywordNone, ""
	}
	w := fold(fields[0])
	return k[w], w
}

// fold is the form keywords are compared in.
func fold(w string) string {
	return strings.ToUpper(strings.TrimFunc(w, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }))
}

func optOutKey(tenant, number string) string { return tenant + "|" + number }

// optOuts is the opt-out list, as read from its compacted topic.
type optOuts struct {
	mu  sync.RWMutex
	set map[string]struct{}
}

func newOptOuts() *optOuts { return &optOuts{set: map[string]struct{}{}} }

func (o *optOuts) apply(rec kafka.Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if rec.Value == nil {
		delete(o.set, string(rec.Key))
		return
	}
	o.set[string(rec.Key)] = struct{}{}
}

// has reports whether number opted out of tenant's marketing, or of everyone's.
func (o *optOuts) has(tenant, number string) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	_, mine := o.set[optOutKey(tenant, number)]
	_, all := o.set[optOutKey(allTenants, number)]
	return mine || all
}

func (o *optOuts) len() int {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return len(o.set)
}

// handleMO turns MO messages that start with a keyword into opt-out list
// entries (STOP) or tombstones (START). Other MOs are not the router's.
func (r *router) handleMO(ctx context.Context, _ string, batch []kafka.Message) error {
	pol := r.policy.Load()
	var out []kafka.Message
	for _, rec := range batch {
		var mo sluicepb.MO
		if err := proto.Unmarshal(rec.Value, &mo); err != nil {
			// Not something a sender writes; keeping it would stop opt-outs
			// for every subscriber behind it.
			r.env.Log.ErrorContext(ctx, "MO skipped: not a sluice.v1.MO", "partition", rec.Partition, "offset", rec.Offset, "err", err)
			continue
		}
		kind, word := pol.keywords.classify(mo.Text)
		if kind == keywordNone {
			continue
		}
		tenant, ok := pol.addresses[mo.DestAddr]
		if !ok {
			tenant = allTenants
		}
		number := message.NormalizeNumber(mo.SourceAddr)
		rec := kafka.Message{Topic: r.env.Topic(schemas.TopicOptOut), Key: []byte(optOutKey(tenant, number))}
		if kind == keywordStop {
			v, err := proto.Marshal(&sluicepb.OptOut{Tenant: tenant, Number: number, Keyword: word, Carrier: mo.Carrier, AtMs: mo.ReceivedAtMs})
			if err != nil {
				return fmt.Errorf("encode opt-out: %w", err)
			}
			rec.Value = v
		}
		r.env.Log.InfoContext(ctx, "opt-out keyword", "keyword", word, "tenant", tenant, "to_prefix", prefixOf(number))
		r.metrics.keyword(ctx, kind)
		out = append(out, rec)
	}
	return r.env.Producer.Produce(ctx, out...)
}
