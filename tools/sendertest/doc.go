// Package sendertest proves the sender against simulated carriers (smsc-sim) over
// real TCP, on a real Kafka broker: carrier limits across replicas, throttling,
// retries, outcome-unknown policy, isolation of a dead carrier, long-message modes,
// MO and carrier health. It holds tests only.
package sendertest
