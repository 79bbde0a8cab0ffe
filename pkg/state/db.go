// Package state is sluice's disk-bounded state: tables in an embedded LSM
// store (pebble), one per stage partition, each restored from a Kafka
// changelog partitioned like the stage's input. The changelog stays the
// source of truth; the store keeps the state off the heap, bounded by its
// caches whatever the number of rows, and lets a restart replay only the
// changelog written since its checkpoint.
package state

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
)

// DB is a process's store: every table of every stage lives in it, each
// under its own key prefix.
type DB struct {
	db    *pebble.DB
	cache *pebble.Cache
	dir   string
	temp  bool // created by Open: removed on Close

	mu     sync.Mutex
	stores map[string]*Store // by prefix, for Live
}

// Memory bounds of the store: the block cache and the memtables are the
// only large allocations, whatever the number of keys.
const (
	cacheBytes    = 64 << 20
	memTableBytes = 16 << 20
)

// Open opens (or creates) the store in dir; an empty dir is a temporary
// directory, removed on Close.
func Open(dir string) (*DB, error) {
	temp := dir == ""
	if temp {
		d, err := os.MkdirTemp("", "sluice-state-")
		if err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
		dir = d
	}
	cache := pebble.NewCache(cacheBytes)
	opts := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                memTableBytes,
		MemTableStopWritesThreshold: 4,
		Logger:                      quietLogger{},
		// Bloom filters let a lookup skip the levels without its key: most
		// lookups of a correlation are of keys not there yet.
		Levels: make([]pebble.LevelOptions, 7),
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		cache.Unref()
		return nil, fmt.Errorf("open state store %s: %w", dir, err)
	}
	return &DB{db: db, cache: cache, dir: dir, temp: temp, stores: map[string]*Store{}}, nil
}

// Close closes the store, and removes it when Open made it temporary.
func (d *DB) Close() error {
	err := d.db.Close()
	d.cache.Unref()
	if d.temp {
		err = errors.Join(err, os.RemoveAll(d.dir))
	}
	return err
}

// Live is the number of live rows of every table in use.
func (d *DB) Live() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for _, s := range d.stores {
		n += s.live.Load()
	}
	return n
}

// quietLogger keeps pebble's informational chatter out of the service log.
// Fatalf must not return (pebble's own logger exits too).
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
	os.Exit(1)
}
