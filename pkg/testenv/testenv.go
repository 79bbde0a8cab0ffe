// Package testenv gives tests a real Kafka broker and a real ClickHouse
// server, each test isolated in its own topics and database.
//
// `make test` starts Apache Kafka and clickhouse-server (tools/testenv/up.sh)
// and points the tests at them through SLUICE_TEST_KAFKA_BROKERS and
// SLUICE_TEST_CLICKHOUSE_ADDR. Without those variables a plain `go test`
// still runs everything: Kafka falls back to the embedded kfake broker and
// ClickHouse to a clickhouse-server started once per test binary. Call Main
// from TestMain in packages that use ClickHouse so that server stops cleanly.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Environment variables set by tools/testenv/up.sh (via .testenv/env.sh).
const (
	EnvKafkaBrokers   = "SLUICE_TEST_KAFKA_BROKERS"   // comma-separated host:port list
	EnvClickHouseAddr = "SLUICE_TEST_CLICKHOUSE_ADDR" // host:port of the native protocol
	// EnvKafkaReplication is the replication factor for the tests' topics
	// on SLUICE_TEST_KAFKA_BROKERS (3 on up.sh's three-node cluster).
	EnvKafkaReplication = "SLUICE_TEST_KAFKA_REPLICATION_FACTOR"
)

// ReplicationFactor is the replication factor for topics on the brokers
// Kafka returns: SLUICE_TEST_KAFKA_REPLICATION_FACTOR with
// SLUICE_TEST_KAFKA_BROKERS, else 1 (the embedded broker has one node).
func ReplicationFactor() int {
	if os.Getenv(EnvKafkaBrokers) == "" {
		return 1
	}
	if n, err := strconv.Atoi(os.Getenv(EnvKafkaReplication)); err == nil && n > 0 {
		return n
	}
	return 1
}

// Main runs the tests and then stops what this package started for the
// whole test binary. Use it as `func TestMain(m *testing.M) { testenv.Main(m) }`.
func Main(m *testing.M) {
	code := m.Run()
	stopClickHouse()
	os.Exit(code)
}

// TopicPrefix returns a topic prefix unique to this test run, such as
// "TestRouter-3f9a1c2e.", for the config's kafka.topic_prefix.
// On a shared broker (SLUICE_TEST_KAFKA_BROKERS) the test's topics are
// deleted when it ends, so that a long run does not pile up partitions.
func TopicPrefix(t testing.TB) string {
	t.Helper()
	prefix := sanitize(t.Name(), '-', true) + "-" + randomHex() + "."
	if v := os.Getenv(EnvKafkaBrokers); v != "" {
		t.Cleanup(func() {
			if err := deleteTopics(strings.Split(v, ","), prefix); err != nil {
				t.Logf("testenv: delete the test's topics: %v", err)
			}
		})
	}
	return prefix
}

// sanitize keeps [a-zA-Z0-9] (lower case unless keepCase), replaces every
// other rune by sep and bounds the length, so that a test name fits in a
// Kafka topic or ClickHouse database name.
func sanitize(name string, sep rune, keepCase bool) string {
	const maxLen = 40
	if !keepCase {
		name = strings.ToLower(name)
	}
	b := []rune(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return sep
	}, name))
	if len(b) > maxLen {
		b = b[:maxLen]
	}
	return string(b)
}

func randomHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return hex.EncodeToString(b[:])
}
