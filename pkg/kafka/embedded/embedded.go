// Package embedded runs an in-process Kafka broker (franz-go's kfake) for the
// demo and for fast tests. It is never meant for production: it has no
// replication, no quotas and keeps data in memory. kfake's API changes often,
// so the rest of sluice sees only this package.
package embedded

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is a running single-node embedded Kafka cluster on 127.0.0.1.
type Broker struct {
	cluster *kfake.Cluster
}

type options struct {
	port       int
	partitions int
}

// Option configures Start.
type Option func(*options)

// WithPort listens on 127.0.0.1:port instead of a random free port.
func WithPort(port int) Option {
	return func(o *options) { o.port = port }
}

// WithDefaultPartitions sets the partition count of topics created without
// one (CreateTopics with NumPartitions -1).
func WithDefaultPartitions(n int) Option {
	return func(o *options) { o.partitions = n }
}

// Start starts a one-broker cluster. Topics are created only by CreateTopics
// requests, as with auto.create.topics.enable=false on a real broker.
func Start(opts ...Option) (*Broker, error) {
	o := options{partitions: 1}
	for _, opt := range opts {
		opt(&o)
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("sluice-embedded"),
		kfake.DefaultNumPartitions(o.partitions),
	}
	if o.port != 0 {
		kopts = append(kopts, kfake.Ports(o.port))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka: %w", err)
	}
	return &Broker{cluster: c}, nil
}

// Addrs returns the bootstrap addresses (host:port).
func (b *Broker) Addrs() []string { return b.cluster.ListenAddrs() }

// Close stops the broker and drops its data.
func (b *Broker) Close() { b.cluster.Close() }
