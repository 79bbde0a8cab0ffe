package router

import (
	"fmt"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
)

// policy is the part of the configuration the router decides with, compiled
// once per load; a SIGHUP swaps it whole between two batches.
type policy struct {
	table         *Table
	tenants       map[string]config.Tenant
	quiet         *quietHours
	keywords      keywords
	addresses     map[string]string // MO destination address → tenant
	failoverAfter time.Duration
}

func compile(cfg config.Config) (*policy, error) {
	quiet, err := newQuietHours(cfg.Router.QuietHours)
	if err != nil {
		return nil, err
	}
	kw, err := newKeywords(cfg.Router.OptOut.Keywords)
	if err != nil {
		return nil, err
	}
	p := &policy{
		table:         NewTable(cfg.Routes),
		tenants:       make(map[string]config.Tenant, len(cfg.Tenants)),
		quiet:         quiet,
		keywords:      kw,
		addresses:     map[string]string{},
		failoverAfter: cfg.Router.FailoverAfter,
	}
	for _, t := range cfg.Tenants {
		p.tenants[t.ID] = t
	}
	for i, a := range cfg.Router.OptOut.Addresses {
		if _, ok := p.tenants[a.Tenant]; !ok {
			return nil, fmt.Errorf("router.opt_out.addresses[%d]: unknown tenant %q", i, a.Tenant)
		}
		if _, dup := p.addresses[a.Address]; dup || a.Address == "" {
			return nil, fmt.Errorf("router.opt_out.addresses[%d]: address %q is empty or listed twice", i, a.Address)
		}
		p.addresses[a.Address] = a.Tenant
	}
	return p, nil
}
