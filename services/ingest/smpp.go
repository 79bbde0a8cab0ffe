package ingest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/services/ingest/smppd"
)

const frontSMPP = "smpp"

// smppStatuses maps the shared validation's codes to SMPP command statuses.
var smppStatuses = map[string]uint32{
	CodeInvalidNumber:   smpp.StatusInvDstAddr,
	CodeNotMobile:       smpp.StatusInvDstAddr,
	CodeInvalidSender:   smpp.StatusInvSrcAddr,
	CodeTextTooLong:     smpp.StatusInvMsgLen,
	CodeTooLong:         smpp.StatusInvMsgLen,
	CodeInvalidText:     smppd.StatusInvDCS, // the text cannot be sent as it came
	CodeInvalidValidity: smppd.StatusInvExpiry,
}

// smppStatusOf is the submit_sm_resp status of a refused message.
func smppStatusOf(ferr *FieldError) uint32 {
	if ferr.Code == CodeRequired {
		switch ferr.Field {
		case "to":
			return smpp.StatusInvDstAddr
		case "from":
			return smpp.StatusInvSrcAddr
		case "text":
			return smpp.StatusInvMsgLen
		}
	}
	if st, ok := smppStatuses[ferr.Code]; ok {
		return st
	}
	return smppd.StatusSubmitFail
}

// Submit is the SMPP front door's way in: the same validation as the other
// doors, then the accepted record and status, durable before it returns.
func (in *intake) Submit(ctx context.Context, tenant string, req message.Request) (string, error) {
	now := in.now()
	m, ferr := Accept(tenant, req, now, in.limits)
	if ferr != nil {
		in.rejected(ctx, frontSMPP, []APIError{{FieldError: *ferr}})
		return "", &smppd.Rejection{Status: smppStatusOf(ferr), Reason: ferr.Error()}
	}
	acc, err := in.publish(ctx, m, now)
	if err != nil {
		return "", err
	}
	c, err := in.store.claim(ctx, nil)
	if err != nil {
		return "", err
	}
	if err := in.produce(ctx, acc.records); err != nil {
		c.done(nil)
		return "", err
	}
	c.done([]published{acc.status})
	in.metrics.accepted.Add(ctx, 1, metric.WithAttributes(attribute.String("front_door", frontSMPP)))
	return m.Id, nil
}

// serveSMPP runs the SMPP front door on addr until ctx ends.
func serveSMPP(ctx context.Context, in *intake, cfg config.Config, ready func(addr string)) error {
	var tc *tls.Config
	if cfg.Ingest.SMPPTLSCert != "" || cfg.Ingest.SMPPTLSKey != "" {
		cert, err := tls.LoadX509KeyPair(cfg.Ingest.SMPPTLSCert, cfg.Ingest.SMPPTLSKey)
		if err != nil {
			return fmt.Errorf("smpp front door: TLS: %w", err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv, err := smppd.New(smppd.Config{
		Tenants:     cfg.Tenants,
		Brokers:     cfg.Kafka.Brokers,
		TopicPrefix: cfg.Kafka.TopicPrefix,
		Intake:      in,
		Producer:    in.env.Producer,
		Logger:      in.env.Log.With("front_door", frontSMPP),
		TLS:         tc,
	})
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Ingest.SMPPAddr)
	if err != nil {
		return fmt.Errorf("smpp front door: %w", err)
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	return srv.Serve(ctx, ln)
}
