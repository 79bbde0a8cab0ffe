package smpp

import (
	"errors"
	"fmt"
)

// Command status values (SMPP 3.4 section 5.1.3) used by sluice.
const (
	StatusOK              uint32 = 0x00 // ESME_ROK
	StatusInvMsgLen       uint32 = 0x01 // ESME_RINVMSGLEN
	StatusInvCmdLen       uint32 = 0x02 // ESME_RINVCMDLEN
	StatusInvCmdID        uint32 = 0x03 // ESME_RINVCMDID
	StatusInvBindStatus   uint32 = 0x04 // ESME_RINVBNDSTS
	StatusAlreadyBound    uint32 = 0x05 // ESME_RALYBND
	StatusSysErr          uint32 = 0x08 // ESME_RSYSERR
	StatusInvSrcAddr      uint32 = 0x0A // ESME_RINVSRCADR
	StatusInvDstAddr      uint32 = 0x0B // ESME_RINVDSTADR
	StatusInvMsgID        uint32 = 0x0C // ESME_RINVMSGID
	StatusBindFailed      uint32 = 0x0D // ESME_RBINDFAIL
	StatusInvPassword     uint32 = 0x0E // ESME_RINVPASWD
	StatusInvSystemID     uint32 = 0x0F // ESME_RINVSYSID
	StatusMsgQueueFull    uint32 = 0x14 // ESME_RMSGQFUL
	StatusThrottled       uint32 = 0x58 // ESME_RTHROTTLED
	StatusTempAppErr      uint32 = 0x64 // ESME_RX_T_APPN
	StatusPermAppErr      uint32 = 0x65 // ESME_RX_P_APPN
	StatusRejectAppErr    uint32 = 0x66 // ESME_RX_R_APPN
	StatusDeliveryFailure uint32 = 0xFE // ESME_RDELIVERYFAILURE
	StatusUnknownErr      uint32 = 0xFF // ESME_RUNKNOWNERR
)

var statusNames = map[uint32]string{
	0x00: "ESME_ROK",
	0x01: "ESME_RINVMSGLEN",
	0x02: "ESME_RINVCMDLEN",
	0x03: "ESME_RINVCMDID",
	0x04: "ESME_RINVBNDSTS",
	0x05: "ESME_RALYBND",
	0x06: "ESME_RINVPRTFLG",
	0x07: "ESME_RINVREGDLVFLG",
	0x08: "ESME_RSYSERR",
	0x0A: "ESME_RINVSRCADR",
	0x0B: "ESME_RINVDSTADR",
	0x0C: "ESME_RINVMSGID",
	0x0D: "ESME_RBINDFAIL",
	0x0E: "ESME_RINVPASWD",
	0x0F: "ESME_RINVSYSID",
	0x11: "ESME_RCANCELFAIL",
	0x13: "ESME_RREPLACEFAIL",
	0x14: "ESME_RMSGQFUL",
	0x15: "ESME_RINVSERTYP",
	0x33: "ESME_RINVNUMDESTS",
	0x34: "ESME_RINVDLNAME",
	0x40: "ESME_RINVDESTFLAG",
	0x42: "ESME_RINVSUBREP",
	0x43: "ESME_RINVESMCLASS",
	0x44: "ESME_RCNTSUBDL",
	0x45: "ESME_RSUBMITFAIL",
	0x48: "ESME_RINVSRCTON",
	0x49: "ESME_RINVSRCNPI",
	0x50: "ESME_RINVDSTTON",
	0x51: "ESME_RINVDSTNPI",
	0x53: "ESME_RINVSYSTYP",
	0x54: "ESME_RINVREPFLAG",
	0x55: "ESME_RINVNUMMSGS",
	0x58: "ESME_RTHROTTLED",
	0x61: "ESME_RINVSCHED",
	0x62: "ESME_RINVEXPIRY",
	0x63: "ESME_RINVDFTMSGID",
	0x64: "ESME_RX_T_APPN",
	0x65: "ESME_RX_P_APPN",
	0x66: "ESME_RX_R_APPN",
	0x67: "ESME_RQUERYFAIL",
	0xC0: "ESME_RINVOPTPARSTREAM",
	0xC1: "ESME_ROPTPARNOTALLWD",
	0xC2: "ESME_RINVPARLEN",
	0xC3: "ESME_RMISSINGOPTPARAM",
	0xC4: "ESME_RINVOPTPARAMVAL",
	0xFE: "ESME_RDELIVERYFAILURE",
	0xFF: "ESME_RUNKNOWNERR",
}

// StatusName returns the SMPP name of a command status with its code, e.g.
// "ESME_RTHROTTLED (0x58)"; vendor-specific codes are shown as "status 0x00000400".
func StatusName(status uint32) string {
	if n, ok := statusNames[status]; ok {
		return fmt.Sprintf("%s (0x%02X)", n, status)
	}
	return fmt.Sprintf("status 0x%08X", status)
}

// Temporary reports whether a non-zero submit_sm_resp status means "try again later"
// rather than "this message will never be accepted".
func Temporary(status uint32) bool {
	switch status {
	case StatusSysErr, StatusMsgQueueFull, StatusThrottled, StatusTempAppErr:
		return true
	}
	return false
}

// StatusError is a response that came back with a non-zero command status.
type StatusError struct {
	Command string // the request's command, e.g. "bind_transceiver"
	Status  uint32
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("smpp: %s: %s", e.Command, StatusName(e.Status))
}

var (
	// ErrOutcomeUnknown means a request was written but no response came (timeout,
	// connection lost, session ended): the peer may or may not have acted on it.
	ErrOutcomeUnknown = errors.New("smpp: request written but no response (outcome unknown)")
	// ErrClosed means the session is closed or closing; the request was not written.
	ErrClosed = errors.New("smpp: session closed")
	// ErrUnbound means the peer ended the session with unbind.
	ErrUnbound = errors.New("smpp: unbound by peer")
	// ErrSessionEnded means a deliver_sm or data_sm was not acknowledged because the
	// session ended (Close, unbind, connection lost) before it was taken.
	ErrSessionEnded = errors.New("smpp: session ended before the PDU was taken")
	// ErrNoHandler means a deliver_sm or data_sm was refused because the session has
	// no OnDeliver.
	ErrNoHandler = errors.New("smpp: no OnDeliver to take the PDU")
)
