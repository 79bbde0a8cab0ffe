package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKRaftClusterID(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 { // a '-' first would come about 31 times
		id := KRaftClusterID()
		if len(id) != 22 || strings.HasPrefix(id, "-") || seen[id] {
			t.Fatalf("cluster id %q: want 22 characters, no leading '-', new each time", id)
		}
		seen[id] = true
	}
}

// TestWriteKRaftConfig checks the server.properties of a one-node broker
// and of a node of a three-node cluster.
func TestWriteKRaftConfig(t *testing.T) {
	nodes := []KRaftNode{{1, 29092, 29093}, {2, 29094, 29095}, {3, 29096, 29097}}
	cases := []struct {
		name  string
		write func(dir string) error
		want  []string
	}{
		{"one node", func(dir string) error { return WriteKRaftConfig(dir, 19092, 19093) }, []string{
			"listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093\n",
			"controller.quorum.voters=1@127.0.0.1:19093\n",
		}},
		{"node 2 of 3", func(dir string) error { return WriteKRaftNodeConfig(dir, nodes, 1) }, []string{
			"node.id=2\n",
			"listeners=PLAINTEXT://127.0.0.1:29094,CONTROLLER://127.0.0.1:29095\n",
			"controller.quorum.voters=1@127.0.0.1:29093,2@127.0.0.1:29095,3@127.0.0.1:29097\n",
			"default.replication.factor=3\n",
			"min.insync.replicas=2\n",
			"offsets.topic.replication.factor=3\n",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := c.write(dir); err != nil {
				t.Fatal(err)
			}
			props, err := os.ReadFile(filepath.Join(dir, "server.properties"))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range append(c.want, "log.dirs="+filepath.Join(dir, "data")+"\n") {
				if !strings.Contains(string(props), want) {
					t.Errorf("server.properties lacks %q:\n%s", want, props)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "log4j2.yaml")); err != nil {
				t.Error(err)
			}
		})
	}
	if err := WriteKRaftNodeConfig(t.TempDir(), nodes, 3); err == nil {
		t.Error("node 3 of 3: want an error")
	}
}
