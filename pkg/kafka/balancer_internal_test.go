package kafka

import (
	"fmt"
	"slices"
	"testing"

	kgo "github.com/segmentio/kafka-go"
)

// TestRangeBalancerCoPartitions feeds partitions in the orders a broker may
// list them; every member must get the same partition numbers of each topic.
func TestRangeBalancerCoPartitions(t *testing.T) {
	parts := func(order ...int) []kgo.Partition {
		var ps []kgo.Partition
		for _, topic := range []string{"otp", "bulk"} {
			for _, id := range order {
				ps = append(ps, kgo.Partition{Topic: topic, ID: id})
			}
		}
		return ps
	}
	tests := []struct {
		name       string
		members    int
		partitions []kgo.Partition
	}{
		{"sorted", 2, parts(0, 1, 2, 3)},
		{"reversed", 2, parts(3, 2, 1, 0)},
		{"otp reversed only", 2, append(parts(0, 1, 2)[:3], parts(2, 1, 0)[3:]...)},
		{"three members shuffled", 3, append(parts(4, 0, 3, 1, 2)[:5], parts(1, 4, 2, 0, 3)[5:]...)},
		{"more members than partitions", 3, parts(1, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var members []kgo.GroupMember
			for i := range tt.members {
				members = append(members, kgo.GroupMember{ID: fmt.Sprintf("member-%d", i), Topics: []string{"bulk", "otp"}})
			}
			got := rangeBalancer{}.AssignGroups(members, tt.partitions)
			seen := map[int]string{}
			for id, byTopic := range got {
				otp, bulk := slices.Sorted(slices.Values(byTopic["otp"])), slices.Sorted(slices.Values(byTopic["bulk"]))
				if !slices.Equal(otp, bulk) {
					t.Errorf("%s: otp %v, bulk %v", id, otp, bulk)
				}
				for _, p := range otp {
					if other, ok := seen[p]; ok {
						t.Errorf("partition %d assigned to %s and %s", p, other, id)
					}
					seen[p] = id
				}
			}
			if want := len(tt.partitions) / 2; len(seen) != want {
				t.Errorf("%d partitions assigned, want %d: %v", len(seen), want, got)
			}
		})
	}
}
