package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Id forms of a carrier's SMSC message ids: the base each source writes them
// in. Same means "as the submit_sm_resp writes them".
const (
	ReceiptIDsSame    = "same"
	ReceiptIDsDecimal = "decimal"
	ReceiptIDsHex     = "hex"
)

// ReceiptIDs says how a carrier writes the SMSC message id in each of the
// three places it appears, so that the sender can bring them to one form.
// In sluice.yaml it is either a scalar, the common cases,
//
//	receipt_ids: decimal   # resp in hex, the text's id: in decimal, the TLV as the resp
//
// or a mapping for the rest:
//
//	receipt_ids: {resp: hex, text: decimal, tlv: same}
//
// Resp is hex, decimal or empty (not declared: compared as written). Text
// and TLV are same, decimal or hex. An empty field takes its default: same
// for Text and TLV, and for Resp the base opposite to a decimal or hex Text
// or TLV, as the scalar forms say.
type ReceiptIDs struct {
	Resp string `yaml:"resp,omitempty"` // submit_sm_resp message_id
	Text string `yaml:"text,omitempty"` // the id: of a receipt's text
	TLV  string `yaml:"tlv,omitempty"`  // receipted_message_id, which SMPP 3.4 says is in the resp's form
}

// ReceiptIDsOf is the form a scalar receipt_ids names: same, decimal (resp in
// hex, receipt texts in decimal) or hex (the reverse). The TLV stays in the
// resp's form, as SMPP 3.4 has it.
func ReceiptIDsOf(scalar string) ReceiptIDs {
	switch scalar {
	case ReceiptIDsDecimal:
		return ReceiptIDs{Resp: ReceiptIDsHex, Text: ReceiptIDsDecimal, TLV: ReceiptIDsSame}
	case ReceiptIDsHex:
		return ReceiptIDs{Resp: ReceiptIDsDecimal, Text: ReceiptIDsHex, TLV: ReceiptIDsSame}
	case "", ReceiptIDsSame:
		return ReceiptIDs{Text: ReceiptIDsSame, TLV: ReceiptIDsSame}
	}
	return ReceiptIDs{Text: scalar} // refused by validate, named in its error
}

// WithDefaults fills the fields left empty.
func (r ReceiptIDs) WithDefaults() ReceiptIDs {
	if r.Text == "" {
		r.Text = ReceiptIDsSame
	}
	if r.TLV == "" {
		r.TLV = ReceiptIDsSame
	}
	if r.Resp == "" {
		r.Resp = opposite(r.Text)
		if r.Resp == "" {
			r.Resp = opposite(r.TLV)
		}
	}
	return r
}

// opposite is the resp base implied by a receipt id written in base.
func opposite(base string) string {
	switch base {
	case ReceiptIDsDecimal:
		return ReceiptIDsHex
	case ReceiptIDsHex:
		return ReceiptIDsDecimal
	}
	return ""
}

// Base is the numeric base a source's ids are written in, 0 when unknown.
// source is the form of the Text or TLV field; "resp" asks for the resp's.
func (r ReceiptIDs) Base(form string) int {
	if form == ReceiptIDsSame || form == "resp" {
		form = r.Resp
	}
	switch form {
	case ReceiptIDsDecimal:
		return 10
	case ReceiptIDsHex:
		return 16
	}
	return 0
}

// validate says what is wrong with the forms, or "".
func (r ReceiptIDs) validate() string {
	for _, f := range []struct{ name, v string }{{"text", r.Text}, {"tlv", r.TLV}} {
		switch f.v {
		case "", ReceiptIDsSame, ReceiptIDsDecimal, ReceiptIDsHex:
		default:
			return fmt.Sprintf("%s %q: want same, decimal or hex", f.name, f.v)
		}
	}
	switch r.Resp {
	case "", ReceiptIDsDecimal, ReceiptIDsHex:
	default:
		return fmt.Sprintf("resp %q: want decimal or hex", r.Resp)
	}
	if r.Resp == "" && opposite(r.Text) != "" && opposite(r.TLV) != "" && r.Text != r.TLV {
		return "text and tlv in different bases: say the resp's base too (resp: hex or decimal)"
	}
	return ""
}

// UnmarshalYAML takes the scalar or the mapping form.
func (r *ReceiptIDs) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "", ReceiptIDsSame, ReceiptIDsDecimal, ReceiptIDsHex:
		default:
			return fmt.Errorf("line %d: receipt_ids %q: want same, decimal or hex, or a mapping of resp, text and tlv", n.Line, n.Value)
		}
		*r = ReceiptIDsOf(n.Value)
		return nil
	}
	type plain ReceiptIDs // without this method
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := n.Content[i].Value; k {
		case "resp", "text", "tlv":
		default:
			return fmt.Errorf("line %d: receipt_ids: unknown field %q (want resp, text, tlv)", n.Content[i].Line, k)
		}
	}
	*r = ReceiptIDs(p)
	return nil
}

// MarshalYAML writes the scalar form when one says it all.
func (r ReceiptIDs) MarshalYAML() (any, error) {
	for _, s := range []string{ReceiptIDsSame, ReceiptIDsDecimal, ReceiptIDsHex} {
		if r.WithDefaults() == ReceiptIDsOf(s).WithDefaults() {
			return s, nil
		}
	}
	type plain ReceiptIDs
	return plain(r), nil
}
