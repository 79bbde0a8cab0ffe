package images

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// buildHello compiles testdata/hello as a static binary.
func buildHello(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./testdata/hello")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestArchiveRuns builds an image of a real binary, writes the archive,
// reads it back as an OCI layout, and runs the binary found in the image's
// layer, as the image's user would.
func TestArchiveRuns(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	bin := buildHello(t)
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	idx, err := Build(Spec{Name: "hello", Binaries: map[string]string{platform: bin}, CACerts: ca, Labels: map[string]string{"org.opencontainers.image.title": "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "hello.tar")
	const ref = "registry.example/sluice/hello:v1"
	if err := WriteArchive(archive, idx, ref); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	untar(t, archive, dir)
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 || tm.Manifests[0].Annotations[RefName] != ref {
		t.Fatalf("index.json = %+v, want one entry named %s", tm.Manifests, ref)
	}
	inner, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := inner.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Platform == nil || im.Manifests[0].Platform.OS+"/"+im.Manifests[0].Platform.Architecture != platform {
		t.Fatalf("image index = %+v, want one %s image", im.Manifests, platform)
	}
	img, err := inner.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/usr/local/bin/hello" || cf.Config.Labels["org.opencontainers.image.title"] != "hello" {
		t.Errorf("config = %+v", cf.Config)
	}

	files := layerFiles(t, img)
	h := files["usr/local/bin/hello"]
	if h == nil || h.hdr.Mode != 0o755 {
		t.Fatalf("usr/local/bin/hello missing or not executable: %+v", h)
	}
	if f := files["etc/passwd"]; f == nil || !strings.Contains(string(f.data), "nonroot:x:65532:65532:") {
		t.Errorf("etc/passwd lacks the non-root user")
	}
	if f := files["etc/ssl/certs/ca-certificates.crt"]; f == nil || !strings.Contains(string(f.data), "test") {
		t.Errorf("CA bundle missing")
	}
	if f := files["tmp"]; f == nil || f.hdr.Typeflag != tar.TypeDir || f.hdr.Mode != 0o1777 {
		t.Errorf("tmp/ missing or not world-writable with the sticky bit")
	}
	run := filepath.Join(t.TempDir(), "hello-from-image")
	if err := os.WriteFile(run, h.data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(run, "a", "b").CombinedOutput()
	if err != nil || string(out) != "hello from the image [a b]\n" {
		t.Fatalf("binary from the image: %q, %v", out, err)
	}
}

type entry struct {
	hdr  *tar.Header
	data []byte
}

func layerFiles(t *testing.T, img v1.Image) map[string]*entry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]*entry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, tr); err != nil {
			t.Fatal(err)
		}
		out[h.Name] = &entry{hdr: h, data: buf.Bytes()}
	}
}

// TestReproducible: the same binaries give the same digests and archives.
func TestReproducible(t *testing.T) {
	bin := buildHello(t)
	spec := Spec{Name: "hello", Binaries: map[string]string{"linux/amd64": bin, "linux/arm64": bin}}
	var digests []v1.Hash
	var archives [][]byte
	for range 2 {
		idx, err := Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
		path := filepath.Join(t.TempDir(), "hello.tar")
		if err := WriteArchive(path, idx, "hello:1"); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		archives = append(archives, data)
	}
	if digests[0] != digests[1] || !bytes.Equal(archives[0], archives[1]) {
		t.Errorf("two builds differ: %s, %s", digests[0], digests[1])
	}
	idx, _ := Build(spec)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 || im.Manifests[0].Platform.Architecture != "amd64" || im.Manifests[1].Platform.Architecture != "arm64" {
		t.Errorf("platforms = %+v, want amd64 then arm64", im.Manifests)
	}
}

func TestBuildErrors(t *testing.T) {
	cases := []struct {
		name string
		spec Spec
		want string
	}{
		{"no binaries", Spec{Name: "x"}, "no binaries"},
		{"missing binary", Spec{Name: "x", Binaries: map[string]string{"linux/amd64": "/nonexistent/x"}}, "no such file"},
		{"bad platform", Spec{Name: "x", Binaries: map[string]string{"amd64": "/bin/true"}}, "not os/arch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Build(tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
