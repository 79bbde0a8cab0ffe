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

func TestWriteKRaftConfig(t *testing.T) {
	dir := t.TempDir()
	if err := WriteKRaftConfig(dir, 19092, 19093); err != nil {
		t.Fatal(err)
	}
	props, err := os.ReadFile(filepath.Join(dir, "server.properties"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093\n",
		"controller.quorum.voters=1@127.0.0.1:19093\n",
		"log.dirs=" + filepath.Join(dir, "data") + "\n",
	} {
		if !strings.Contains(string(props), want) {
			t.Errorf("server.properties lacks %q:\n%s", want, props)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "log4j2.yaml")); err != nil {
		t.Error(err)
	}
}
