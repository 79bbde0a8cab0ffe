package embedded_test

import (
	"strconv"
	"testing"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sluice-sms/sluice/pkg/kafka/embedded"
	"github.com/sluice-sms/sluice/pkg/testenv/freeport"
)

// The produce/consume/commit round trip on the embedded broker is tested in
// pkg/testenv, next to the same test on a real broker.

func TestOptions(t *testing.T) {
	port := freeport.Port(t)
	tests := []struct {
		name           string
		opts           []embedded.Option
		wantAddr       string // "" for any
		wantPartitions int
	}{
		{"defaults", nil, "", 1},
		{"fixed port", []embedded.Option{embedded.WithPort(port)}, "127.0.0.1:" + strconv.Itoa(port), 1},
		{"default partitions", []embedded.Option{embedded.WithDefaultPartitions(4)}, "", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := embedded.Start(tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			addrs := b.Addrs()
			if len(addrs) != 1 || tt.wantAddr != "" && addrs[0] != tt.wantAddr {
				t.Fatalf("Addrs() = %v, want one address %q", addrs, tt.wantAddr)
			}

			// A topic created without a partition count gets the default.
			client := &kgo.Client{Addr: kgo.TCP(addrs...)}
			resp, err := client.CreateTopics(t.Context(), &kgo.CreateTopicsRequest{Topics: []kgo.TopicConfig{
				{Topic: "t", NumPartitions: -1, ReplicationFactor: -1},
			}})
			if err != nil || resp.Errors["t"] != nil {
				t.Fatalf("create topic: %v %v", err, resp)
			}
			md, err := client.Metadata(t.Context(), &kgo.MetadataRequest{Topics: []string{"t"}})
			if err != nil {
				t.Fatalf("metadata: %v", err)
			}
			if len(md.Brokers) != 1 || len(md.Topics) != 1 || len(md.Topics[0].Partitions) != tt.wantPartitions {
				t.Fatalf("metadata: %d brokers, topics %+v; want 1 broker and %d partitions",
					len(md.Brokers), md.Topics, tt.wantPartitions)
			}
		})
	}
}

func TestCloseFreesPort(t *testing.T) {
	port := freeport.Port(t)
	b, err := embedded.Start(embedded.WithPort(port))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := embedded.Start(embedded.WithPort(port)); err == nil {
		t.Fatal("a second broker started on a port in use")
	}
	b.Close()
	b2, err := embedded.Start(embedded.WithPort(port))
	if err != nil {
		t.Fatalf("port %d not free after Close: %v", port, err)
	}
	b2.Close()
}
