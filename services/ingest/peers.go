package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
)

// peerDirectory knows which peer owns each sms.status partition of a
// divided index, from the index group's members: each joined with its peer
// URL as metadata.
type peerDirectory struct {
	brokers     []string
	group       string
	topic       string
	self        string // this replica's URL: an entry of it is stale
	secret      string // sent to peers as a bearer token ("" = none)
	client      *http.Client
	refreshing  sync.Mutex // one DescribeGroups at a time; lookups go on meanwhile
	mu          sync.Mutex // guards owners and refreshedAt
	owners      map[int]string
	refreshedAt time.Time
}

func newPeerDirectory(brokers []string, group, topic, self, secret string) *peerDirectory {
	return &peerDirectory{brokers: brokers, group: group, topic: topic, self: self, secret: secret,
		client: &http.Client{Timeout: 5 * time.Second}}
}

// owner is the URL of the peer that owns partition p, as last described.
func (d *peerDirectory) owner(p int) (string, bool) {
	if d == nil {
		return "", false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	url, ok := d.owners[p]
	return url, ok
}

// refresh describes the group again, unless it was described in the last
// 100 ms (every request that found no owner asks at once). While the group
// rebalances, no one owns anything.
func (d *peerDirectory) refresh(ctx context.Context) error {
	if d == nil {
		return nil
	}
	d.refreshing.Lock()
	defer d.refreshing.Unlock()
	d.mu.Lock()
	recent := time.Since(d.refreshedAt) < 100*time.Millisecond
	d.mu.Unlock()
	if recent {
		return nil
	}
	members, stable, err := kafka.GroupMembers(ctx, d.brokers, d.group)
	owners := map[int]string{}
	if stable {
		for _, m := range members {
			if url := string(m.Meta); url != d.self {
				for _, p := range m.Partitions[d.topic] {
					owners[p] = url
				}
			}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refreshedAt = time.Now()
	if err != nil {
		return err
	}
	d.owners = owners
	return nil
}

// errNotOwner is a peer's answer for a partition it does not own (421).
var errNotOwner = errors.New("peer does not own the partition")

// known asks the peer at base which of ids (of partitions it owns) were
// accepted.
func (d *peerDirectory) known(ctx context.Context, base string, ids []string) ([]string, error) {
	body, err := json.Marshal(peerKnown{IDs: ids})
	if err != nil {
		return nil, err
	}
	data, status, err := d.call(ctx, http.MethodPost, base+"/peer/v1/known", body)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, peerError(status, data)
	}
	var ans peerKnown
	if err := json.Unmarshal(data, &ans); err != nil {
		return nil, fmt.Errorf("peer %s: %w", base, err)
	}
	return ans.IDs, nil
}

// get asks the peer at base for tenant's message id.
func (d *peerDirectory) get(ctx context.Context, base, tenant, id string) ([]byte, bool, error) {
	data, status, err := d.call(ctx, http.MethodGet, base+"/peer/v1/messages/"+url.PathEscape(id)+"?tenant="+url.QueryEscape(tenant), nil)
	switch {
	case err != nil:
		return nil, false, err
	case status == http.StatusOK:
		return data, true, nil
	case status == http.StatusNotFound:
		return nil, false, nil
	default:
		return nil, false, peerError(status, data)
	}
}

func (d *peerDirectory) call(ctx context.Context, method, target string, body []byte) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	if d.secret != "" {
		req.Header.Set("Authorization", "Bearer "+d.secret)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return data, resp.StatusCode, err
}

func peerError(status int, body []byte) error {
	if status == http.StatusMisdirectedRequest {
		return errNotOwner
	}
	return fmt.Errorf("peer answered %d: %.200s", status, body)
}

// peerKnown is the body of /peer/v1/known, both ways: the ids asked about,
// and those of them accepted.
type peerKnown struct {
	IDs []string `json:"ids"`
}

// peerHandler serves the peers' lookups of the partitions this replica
// owns; one it does not own is answered 421, and the asker looks again.
func (s *statusStore) peerHandler(secret string) http.Handler {
	want := sha256.Sum256([]byte("Bearer " + secret))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /peer/v1/known", func(w http.ResponseWriter, r *http.Request) {
		var q peerKnown
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&q); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, id := range q.IDs {
			if !s.owns(s.partitionOf(id)) {
				http.Error(w, "not the owner of "+id, http.StatusMisdirectedRequest)
				return
			}
		}
		known, err := s.knownHere(r.Context(), q.IDs)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(peerKnown{IDs: known})
	})
	mux.HandleFunc("GET /peer/v1/messages/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !s.owns(s.partitionOf(id)) {
			http.Error(w, "not the owner of "+id, http.StatusMisdirectedRequest)
			return
		}
		value, ok, err := s.getHere(r.Context(), r.URL.Query().Get("tenant"), id)
		switch {
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		case !ok:
			http.NotFound(w, r)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(value)
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
		if secret != "" && subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}
