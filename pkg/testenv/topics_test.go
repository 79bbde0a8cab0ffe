package testenv_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/kafka/embedded"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

// TestTopicPrefixDeletesTopics: on a shared broker, the topics of a test's
// prefix are gone once the test ends; other topics stay.
func TestTopicPrefixDeletesTopics(t *testing.T) {
	b, err := embedded.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	brokers := b.Addrs()
	t.Setenv(testenv.EnvKafkaBrokers, strings.Join(brokers, ","))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, brokers, 1, []kafka.TopicSpec{{Name: "other", Partitions: 1}}); err != nil {
		t.Fatal(err)
	}

	var prefix string
	t.Run("inner", func(t *testing.T) {
		prefix = testenv.TopicPrefix(t)
		if err := kafka.EnsureTopics(ctx, brokers, 1, []kafka.TopicSpec{{Name: prefix + "a", Partitions: 2}, {Name: prefix + "b", Partitions: 1}}); err != nil {
			t.Fatal(err)
		}
	})

	// Deletion completes asynchronously, and kfake takes seconds on a busy
	// machine: wait for it, up to the test's deadline.
	var names []string
	for ctx.Err() == nil {
		var err error
		names, err = kafka.Topics(ctx, brokers)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) == 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(names) != 1 || names[0] != "other" {
		t.Errorf("topics after the inner test: %v, want only [other] (prefix %q)", names, prefix)
	}
}
