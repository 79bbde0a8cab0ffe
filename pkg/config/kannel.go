package config

import "strings"

// checkKannel checks a tenant's Kannel sendsms-user settings; users holds the
// usernames seen so far, since one username must name one tenant.
func checkKannel(t Tenant, users map[string]bool) []string {
	var msgs []string
	switch {
	case t.KannelUsername == "" && (t.KannelPasswordSHA256 != "" || t.KannelDefaultSender != "" || t.KannelDLRURL != ""):
		msgs = append(msgs, "kannel_username: required with the other kannel_* settings")
	case t.KannelUsername == "":
		return nil
	case users[t.KannelUsername]:
		msgs = append(msgs, "kannel_username: "+t.KannelUsername+" is used by another tenant")
	}
	users[t.KannelUsername] = true
	if !isHexSHA256(t.KannelPasswordSHA256) {
		msgs = append(msgs, "kannel_password_sha256: not a hex SHA-256 (64 hex digits)")
	}
	if u := strings.ToLower(t.KannelDLRURL); u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		msgs = append(msgs, "kannel_dlr_url: must be an http:// or https:// URL")
	}
	return msgs
}
