package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/propagation"

	"github.com/sluice-sms/sluice/pkg/kafka"
)

// propagator is W3C trace context and baggage, the one sluice speaks in
// Kafka headers whatever the process's global propagator is.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// HeaderCarrier carries trace context in Kafka record headers.
type HeaderCarrier struct{ Headers *[]kafka.Header }

// Get returns the value of the first header named key.
func (c HeaderCarrier) Get(key string) string {
	for _, h := range *c.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Set replaces the header named key, or adds it.
func (c HeaderCarrier) Set(key, value string) {
	for i, h := range *c.Headers {
		if h.Key == key {
			(*c.Headers)[i].Value = []byte(value)
			return
		}
	}
	*c.Headers = append(*c.Headers, kafka.Header{Key: key, Value: []byte(value)})
}

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, len(*c.Headers))
	for i, h := range *c.Headers {
		keys[i] = h.Key
	}
	return keys
}

// Inject writes the trace context of ctx into headers.
func Inject(ctx context.Context, headers *[]kafka.Header) {
	propagator.Inject(ctx, HeaderCarrier{Headers: headers})
}

// Extract returns ctx with the trace context found in headers.
func Extract(ctx context.Context, headers []kafka.Header) context.Context {
	return propagator.Extract(ctx, HeaderCarrier{Headers: &headers})
}
