package testenv

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KRaftNode is one combined broker and controller of a KRaft cluster on
// loopback.
type KRaftNode struct {
	ID             int // node.id, from 1
	Port           int // client listener
	ControllerPort int // KRaft controller listener
}

// WriteKRaftConfig writes server.properties and log4j2.yaml for a one-node
// KRaft Apache Kafka on loopback into dir, with its data in dir/data: the
// broker the fault suite stops and starts again.
func WriteKRaftConfig(dir string, port, controllerPort int) error {
	return WriteKRaftNodeConfig(dir, []KRaftNode{{ID: 1, Port: port, ControllerPort: controllerPort}}, 0)
}

// WriteKRaftNodeConfig writes the configuration of nodes[i] of a cluster of
// combined broker+controller nodes (all of them quorum voters) into dir, with
// its data in dir/data: the cluster tools/testenv/up.sh starts. Internal
// topics and new topics get replication factor min(3, len(nodes)) and
// min.insync.replicas one less (at least 1), so that one broker may fail
// while acks=all writes go on.
func WriteKRaftNodeConfig(dir string, nodes []KRaftNode, i int) error {
	if i < 0 || i >= len(nodes) {
		return fmt.Errorf("kraft config: node %d of %d", i, len(nodes))
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return err
	}
	n := nodes[i]
	voters := make([]string, len(nodes))
	for j, v := range nodes {
		voters[j] = fmt.Sprintf("%d@127.0.0.1:%d", v.ID, v.ControllerPort)
	}
	rf := min(3, len(nodes))
	isr := max(1, rf-1)
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=%[4]d
controller.quorum.voters=%[5]s
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=%[3]s
num.partitions=1
auto.create.topics.enable=false
default.replication.factor=%[6]d
min.insync.replicas=%[7]d
offsets.topic.replication.factor=%[6]d
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=%[6]d
transaction.state.log.min.isr=%[7]d
share.coordinator.state.topic.replication.factor=%[6]d
share.coordinator.state.topic.min.isr=%[7]d
group.initial.rebalance.delay.ms=0
# Tests delete their topics when they end; free the files at once, since
# thousands of partitions come close to the open-files limit.
file.delete.delay.ms=1000
`, n.Port, n.ControllerPort, filepath.Join(dir, "data"), n.ID, strings.Join(voters, ","), rf, isr)
	if err := os.WriteFile(filepath.Join(dir, "server.properties"), []byte(props), 0o644); err != nil {
		return err
	}
	const log4j = `Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
`
	return os.WriteFile(filepath.Join(dir, "log4j2.yaml"), []byte(log4j), 0o644)
}

// KRaftClusterID returns a new cluster id for Kafka's storage tool: 16
// random bytes in unpadded URL-safe base64, never starting with '-', which
// the tool would read as an option.
func KRaftClusterID() string {
	for {
		id := make([]byte, 16)
		_, _ = rand.Read(id) // never fails (crypto/rand)
		if s := base64.RawURLEncoding.EncodeToString(id); !strings.HasPrefix(s, "-") {
			return s
		}
	}
}
