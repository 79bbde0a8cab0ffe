package message

import (
	"strconv"
	"time"

	"github.com/google/uuid"
)

// MO is a record of sms.mo (and of sluice.mo.unowned, without Tenant): a
// mobile-originated message, its parts joined (schemas/json/sms.mo.v1.json).
type MO struct {
	MOID       string    `json:"mo_id"`
	Tenant     string    `json:"tenant,omitempty"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Text       string    `json:"text"`
	Encoding   string    `json:"encoding"`
	Carrier    string    `json:"carrier"`
	ReceivedAt time.Time `json:"received_at"`
	InReplyTo  string    `json:"in_reply_to,omitempty"`
	Parts      int       `json:"parts,omitempty"`
	Incomplete bool      `json:"incomplete,omitempty"`
}

// MOID is the id of the MO whose (first) part is the record at offset of
// partition of sluice.mo: a replay names it alike.
func MOID(partition int, offset int64) string {
	return uuid.NewSHA1(eventNamespace, []byte("mo/"+strconv.Itoa(partition)+"/"+strconv.FormatInt(offset, 10))).String()
}
