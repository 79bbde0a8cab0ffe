package kafka

import (
	"context"
	"fmt"

	kgo "github.com/segmentio/kafka-go"
)

// Member is one member of a consumer group, as its coordinator describes it.
type Member struct {
	// Meta is the member's GroupConfig.Meta.
	Meta []byte
	// Partitions are the partitions of each topic assigned to it in the
	// current generation; none while the group rebalances.
	Partitions map[string][]int
}

// GroupMembers describes group's members and tells whether the group is
// stable (not rebalancing: its assignments are current).
func GroupMembers(ctx context.Context, brokers []string, group string) ([]Member, bool, error) {
	resp, err := newClient(brokers).DescribeGroups(ctx, &kgo.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return nil, false, fmt.Errorf("describe group %s: %w", group, err)
	}
	if len(resp.Groups) != 1 {
		return nil, false, fmt.Errorf("describe group %s: %d groups in the answer", group, len(resp.Groups))
	}
	g := resp.Groups[0]
	if g.Error != nil {
		return nil, false, fmt.Errorf("describe group %s: %w", group, g.Error)
	}
	members := make([]Member, 0, len(g.Members))
	for _, m := range g.Members {
		parts := map[string][]int{}
		for _, t := range m.MemberAssignments.Topics {
			parts[t.Topic] = t.Partitions
		}
		members = append(members, Member{Meta: m.MemberMetadata.UserData, Partitions: parts})
	}
	return members, g.GroupState == "Stable", nil
}
