package smscsim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sluice-sms/sluice/pkg/smpp"
	"github.com/sluice-sms/sluice/pkg/text"
)

// SetFaults changes a carrier's faults while it runs; going down drops its bound
// sessions.
func (s *Sim) SetFaults(carrierID string, f Faults) error {
	c, ok := s.carriers[carrierID]
	if !ok {
		return fmt.Errorf("smscsim: unknown carrier %q", carrierID)
	}
	return c.setFaults(f)
}

// SendMO sends a mobile-originated message from an international number to a bound
// receiver of the carrier, GSM-7 when the text allows it, else UCS-2, and waits for the
// ESME's acknowledgement.
func (s *Sim) SendMO(ctx context.Context, carrierID, from, to, msg string) error {
	c, ok := s.carriers[carrierID]
	if !ok {
		return fmt.Errorf("smscsim: unknown carrier %q", carrierID)
	}
	return c.sendMO(ctx, from, to, msg)
}

func (c *carrier) sendMO(ctx context.Context, from, to, msg string) error {
	enc, parts, err := text.Split(msg, 0, 1)
	if err != nil {
		return fmt.Errorf("smscsim: MO text: %w", err)
	}
	d := &smpp.Deliver{
		SourceAddr: from, SourceTON: 1, SourceNPI: 1,
		DestAddr: to, DestTON: 3,
		DataCoding:   text.DataCoding(enc),
		ShortMessage: parts[0].Payload,
	}
	sessions := c.srv.Receivers(c.cfg.SystemID)
	if len(sessions) == 0 {
		return errors.New("smscsim: no receiver bound")
	}
	if err := sessions[rand.IntN(len(sessions))].Deliver(ctx, d); err != nil {
		return err
	}
	c.mosSent.Add(1)
	return nil
}

// runMO sends MOText every MOEvery from a random subscriber until ctx ends.
func (c *carrier) runMO(ctx context.Context) {
	t := time.NewTicker(c.cfg.MOEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		from := fmt.Sprintf("4477009%05d", rand.IntN(100000))
		if err := c.sendMO(ctx, from, "12345", c.cfg.MOText); err != nil {
			c.log.Debug("smscsim: MO not delivered", "err", err)
		}
	}
}
