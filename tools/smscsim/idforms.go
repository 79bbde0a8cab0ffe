package smscsim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-sms/sluice/pkg/config"
)

// Id forms: the base a message id is written in, in each place it appears.
const (
	IDFormSame    = "same" // as the submit_sm_resp
	IDFormHex     = "hex"
	IDFormDecimal = "decimal"
)

// maxIDLen is the longest message_id SMPP 3.4 allows (a C-Octet String of 65
// with its NUL).
const maxIDLen = 64

// hexWidth is the digits of a hex id before id_zero_pad existed: the 64-bit
// id written in full.
const hexWidth = 16

// idForms are a carrier's id forms, resolved: each base hex or decimal.
type idForms struct {
	resp, text, tlv string
	upper           bool
	pad             int
}

// idForms checks the id settings and resolves "same" and the defaults.
func (c CarrierConfig) idForms() (idForms, error) {
	f := idForms{resp: IDFormHex, text: IDFormSame, tlv: IDFormSame, pad: c.IDZeroPad}
	switch c.RespIDForm {
	case "":
	case IDFormHex, IDFormDecimal:
		f.resp = c.RespIDForm
	default:
		return f, fmt.Errorf("resp_id_form %q: want hex or decimal", c.RespIDForm)
	}
	switch c.DLRIDFormat {
	case "":
	case IDFormHex, IDFormDecimal:
		if c.DLRTextIDForm != "" {
			return f, errors.New("dlr_id_format is dlr_text_id_form's older name: set only one")
		}
		f.text = c.DLRIDFormat
	default:
		return f, fmt.Errorf("dlr_id_format %q: want hex or decimal", c.DLRIDFormat)
	}
	for _, s := range []struct {
		key, v string
		to     *string
	}{{"dlr_text_id_form", c.DLRTextIDForm, &f.text}, {"dlr_tlv_id_form", c.DLRTLVIDForm, &f.tlv}} {
		switch s.v {
		case "":
		case IDFormSame, IDFormHex, IDFormDecimal:
			*s.to = s.v
		default:
			return f, fmt.Errorf("%s %q: want same, decimal or hex", s.key, s.v)
		}
	}
	if f.text == IDFormSame {
		f.text = f.resp
	}
	if f.tlv == IDFormSame {
		f.tlv = f.resp
	}
	switch c.IDCase {
	case "", "lower":
	case "upper":
		f.upper = true
	default:
		return f, fmt.Errorf("id_case %q: want lower or upper", c.IDCase)
	}
	if c.IDZeroPad < 0 || c.IDZeroPad > maxIDLen {
		return f, fmt.Errorf("id_zero_pad %d: want 0 to %d (the longest SMPP message_id)", c.IDZeroPad, maxIDLen)
	}
	return f, nil
}

// format writes message id n in base form (hex or decimal), in the
// configured case, padded to the configured width.
func (f idForms) format(n uint64, form string) string {
	var s string
	width := f.pad
	if form == IDFormHex {
		s = strconv.FormatUint(n, 16)
		width = max(width, hexWidth)
		if f.upper {
			s = strings.ToUpper(s)
		}
	} else {
		s = strconv.FormatUint(n, 10)
	}
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}

// ReceiptIDs is the receipt_ids of the sluice carrier for this simulated
// one: none declared when every id is in the resp's base (ids compared as
// written, which case and leading zeros do not upset), else each source's
// base.
func (c CarrierConfig) ReceiptIDs() (config.ReceiptIDs, error) {
	f, err := c.idForms()
	if err != nil {
		return config.ReceiptIDs{}, fmt.Errorf("carrier %s: %w", c.ID, err)
	}
	if f.text == f.resp && f.tlv == f.resp {
		return config.ReceiptIDs{}, nil
	}
	rel := func(form string) string {
		if form == f.resp {
			return config.ReceiptIDsSame
		}
		return form
	}
	return config.ReceiptIDs{Resp: f.resp, Text: rel(f.text), TLV: rel(f.tlv)}, nil
}
