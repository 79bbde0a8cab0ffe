package kafka

import (
	"errors"
	"fmt"
	"testing"

	kgo "github.com/segmentio/kafka-go"
)

func TestRetriable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{kgo.UnknownMemberId, true}, // session expired: join again
		{fmt.Errorf("join: %w", kgo.IllegalGeneration), true},
		{kgo.RebalanceInProgress, true},
		{kgo.GroupCoordinatorNotAvailable, true},
		{kgo.GroupAuthorizationFailed, false},
		{kgo.InvalidGroupId, false},
		{errors.New("connection refused"), true},
	} {
		if got := retriable(tc.err); got != tc.want {
			t.Errorf("retriable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
