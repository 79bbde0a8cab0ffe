package sender

import (
	"math/big"
	"strconv"
	"strings"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/message"
)

// Both sides of the dlr's join are keyed by one canonical form of the SMSC
// message id, whichever of the three places it came from (the submit_sm_resp,
// the receipted_message_id TLV, a receipt text's id:), so that the base, case
// and leading zeros a carrier writes it with do not matter.

// respID is a submit_sm_resp id in canonical form.
func respID(id string, forms config.ReceiptIDs) string {
	return canonicalID(id, forms.Base("resp"))
}

// receiptIDs are a receipt's ids in canonical form: the TLV's and the
// text's, each "" when absent.
func receiptIDs(tlv, text string, forms config.ReceiptIDs) (fromTLV, fromText string) {
	if tlv != "" {
		fromTLV = canonicalID(tlv, forms.Base(forms.TLV))
	}
	if text != "" {
		fromText = canonicalID(text, forms.Base(forms.Text))
	}
	return fromTLV, fromText
}

// canonicalID is id, trimmed and case-folded, and, when it is a number in
// base (10 or 16), that number in decimal. With base 0 (not declared) an id
// of hex digits only loses its leading zeros: both sides are then in the
// same base, whichever it is, and a number's leading zeros are not part of
// it. Anything else is kept as written.
func canonicalID(id string, base int) string {
	id = message.NormalizeSMSCID(id)
	if id == "" || !digitsIn(id, max(base, 16)) {
		return id
	}
	digits := strings.TrimLeft(id, "0")
	if digits == "" {
		return "0"
	}
	switch base {
	case 16:
		if len(digits) <= 15 { // fits an int64
			n, _ := strconv.ParseUint(digits, 16, 64)
			return strconv.FormatUint(n, 10)
		}
		n, _ := new(big.Int).SetString(digits, 16)
		return n.String()
	case 10:
		if !digitsIn(digits, 10) {
			return id // hex, not decimal: not a number in the declared base
		}
	}
	return digits
}

// digitsIn says whether s is made of lower-case digits of base (10 or 16)
// only.
func digitsIn(s string, base int) bool {
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (base != 16 || c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
