// Package images builds sluice's container images without a container
// engine: a static Go binary on an empty base, with a non-root user and CA
// certificates, written as an OCI image layout in a tar file (an
// "oci-archive", which skopeo, podman, crane and containerd load). It is a
// module of its own, outside go.work, so go-containerregistry stays out of
// the services' builds.
package images

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// UID and GID the images run as (the "nonroot" user of distroless images;
// the Helm chart's pods run as the same).
const (
	UID = 65532
	GID = 65532
)

var epoch = time.Unix(0, 0).UTC()

// Spec is one image: one binary per platform.
type Spec struct {
	Name     string            // the binary's name, e.g. sluice-router
	Binaries map[string]string // platform ("linux/amd64") → path of a static binary
	CACerts  string            // CA bundle to install ("" for none)
	Labels   map[string]string // OCI labels of the image config
	// Created is the images' creation time; zero means the Unix epoch, so the
	// same binaries give the same digests.
	Created time.Time
}

// Build returns an OCI image index with one image per platform.
func Build(spec Spec) (v1.ImageIndex, error) {
	if len(spec.Binaries) == 0 {
		return nil, fmt.Errorf("image %s: no binaries", spec.Name)
	}
	platforms := make([]string, 0, len(spec.Binaries))
	for p := range spec.Binaries {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		img, plat, err := buildImage(spec, p)
		if err != nil {
			return nil, fmt.Errorf("image %s %s: %w", spec.Name, p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
	}
	return idx, nil
}

func buildImage(spec Spec, platform string) (v1.Image, *v1.Platform, error) {
	osName, arch, ok := strings.Cut(platform, "/")
	if !ok {
		return nil, nil, fmt.Errorf("platform %q is not os/arch", platform)
	}
	bin, err := os.ReadFile(spec.Binaries[platform])
	if err != nil {
		return nil, nil, err
	}
	var ca []byte
	if spec.CACerts != "" {
		if ca, err = os.ReadFile(spec.CACerts); err != nil {
			return nil, nil, err
		}
	}
	created := spec.Created
	if created.IsZero() {
		created = epoch
	}
	fsTar, err := rootfs(spec.Name, bin, ca, created)
	if err != nil {
		return nil, nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(fsTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = osName, arch, v1.Time{Time: created}
	cf.Config = v1.Config{
		Entrypoint: []string{"/usr/local/bin/" + spec.Name},
		User:       fmt.Sprintf("%d:%d", UID, GID),
		WorkingDir: "/",
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		Labels:     spec.Labels,
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, nil, err
	}
	return img, &v1.Platform{OS: osName, Architecture: arch}, nil
}

// rootfs is the image's only layer: the binary, a passwd naming the
// non-root user, CA certificates and a world-writable /tmp.
func rootfs(name string, bin, ca []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(p string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: mode, ModTime: mtime, Format: tar.FormatPAX})
	}
	file := func(p string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, GID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", GID)
	steps := []func() error{
		func() error { return dir("etc", 0o755) },
		func() error { return file("etc/passwd", 0o644, []byte(passwd)) },
		func() error { return file("etc/group", 0o644, []byte(group)) },
		func() error { return dir("tmp", 0o1777) },
		func() error { return dir("usr", 0o755) },
		func() error { return dir("usr/local", 0o755) },
		func() error { return dir("usr/local/bin", 0o755) },
		func() error { return file("usr/local/bin/"+name, 0o755, bin) },
	}
	if ca != nil {
		steps = append(steps,
			func() error { return dir("etc/ssl", 0o755) },
			func() error { return dir("etc/ssl/certs", 0o755) },
			func() error { return file("etc/ssl/certs/ca-certificates.crt", 0o644, ca) },
		)
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// RefName is the annotation naming an image in an OCI layout.
const RefName = "org.opencontainers.image.ref.name"

// WriteArchive writes idx as an OCI image layout, tagged ref, into a tar
// file at dst (written whole or not at all).
func WriteArchive(dst string, idx v1.ImageIndex, ref string) error {
	dir, err := os.MkdirTemp(filepath.Dir(dst), ".oci-layout-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("oci layout: %w", err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefName: ref})); err != nil {
		return fmt.Errorf("oci layout: %w", err)
	}
	tmp := dst + ".tmp"
	if err := tarDir(dir, tmp); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	return os.Rename(tmp, dst)
}

// tarDir writes the files under dir into a tar at dst, in name order with
// zero times, so equal layouts give equal archives.
func tarDir(dir, dst string) (err error) {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := path.Clean(filepath.ToSlash(rel))
		if d.IsDir() {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX})
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
