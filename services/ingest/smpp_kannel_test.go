package ingest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/testenv/kannel"
	"github.com/sluice-sms/sluice/services/ingest/smppd"
)

// TestSMPPKannelESME: Kannel (Debian package kannel), an independent ESME,
// binds to the front door as a transceiver, submits a message taken in
// through its sendsms HTTP interface, and fires its DLR URL with the final
// status once sluice's receipt comes back.
func TestSMPPKannelESME(t *testing.T) {
	cfg := smppConfig(t)
	addr := startSMPP(t, cfg)
	dlrs := make(chan url.Values, 10)
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dlrs <- r.URL.Query()
	}))
	defer callback.Close()

	k := kannel.Start(smppCtx(t), t, kannel.Config{
		SMSCAddr: addr, SystemID: "acme", Password: "secret1", Window: 10,
		DestAddrTON: 1, DestAddrNPI: 1, LogLevel: 1, SMSBox: true,
	})

	q := url.Values{
		"from": {"ACME"}, "to": {"447700900123"},
		"text": {"Hello from Kannel"}, "dlr-mask": {"3"},
		"dlr-url": {callback.URL + "/dlr?type=%d&id=%F"},
	}
	waitFor(t, "Kannel's sendsms to take the message", func() bool {
		resp, err := http.Get(k.SendSMSURL(q))
		if err != nil {
			return false
		}
		_, _ = readAll(resp)
		return resp.StatusCode == http.StatusAccepted
	})
	var id string
	waitFor(t, "Kannel's submit_sm to be accepted", func() bool {
		for _, m := range acceptedMessages(t, cfg) {
			if m.Text == "Hello from Kannel" && m.To == "+447700900123" && m.From == "ACME" && m.Metadata[smppd.MetaRegisteredDelivery] != "" {
				id = m.Id
				return true
			}
		}
		return false
	})
	produceWhenReady(t, cfg.Kafka.Brokers, finalStatus(t, cfg, id, message.StatusDelivered))
	select {
	case got := <-dlrs:
		if got.Get("type") != "1" || got.Get("id") != id {
			t.Fatalf("Kannel's DLR callback %v, want type 1 (delivered) for %s", got, id)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("Kannel's DLR URL never fired")
	}
}
