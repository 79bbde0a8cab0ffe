package testenv

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WriteKRaftConfig writes server.properties and log4j2.yaml for a one-node
// KRaft Apache Kafka on loopback into dir, with its data in dir/data: the
// broker tools/testenv/up.sh starts and the one the fault suite stops and
// starts again.
func WriteKRaftConfig(dir string, port, controllerPort int) error {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return err
	}
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:%[2]d
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=%[3]s
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Tests delete their topics when they end; free the files at once, since
# thousands of partitions come close to the open-files limit.
file.delete.delay.ms=1000
`, port, controllerPort, filepath.Join(dir, "data"))
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
