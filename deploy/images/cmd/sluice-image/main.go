// Command sluice-image packs static binaries into OCI image archives, one
// per binary, without a container engine (see `make images`).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluice-sms/sluice/deploy/images"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "sluice-image: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("bin", "bin/images", "folder with <os>_<arch>/<name> static binaries")
	out := flag.String("out", "bin/images", "folder for the <name>.tar OCI archives")
	registry := flag.String("registry", "ghcr.io/sluice-sms", "registry and namespace of the image references")
	tag := flag.String("tag", "dev", "tag of the image references")
	platforms := flag.String("platforms", "linux/amd64", "comma-separated os/arch list")
	names := flag.String("names", "sluice-ingest,sluice-router,sluice-sender,sluice-dlr", "comma-separated binary names")
	ca := flag.String("ca", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to install; empty for none")
	version := flag.String("version", "", "org.opencontainers.image.version label")
	revision := flag.String("revision", "", "org.opencontainers.image.revision label")
	flag.Parse()

	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, name := range strings.Split(*names, ",") {
		spec := images.Spec{
			Name:     name,
			Binaries: map[string]string{},
			CACerts:  *ca,
			Labels: map[string]string{
				"org.opencontainers.image.title":    name,
				"org.opencontainers.image.source":   "https://github.com/sluice-sms/sluice",
				"org.opencontainers.image.version":  *version,
				"org.opencontainers.image.revision": *revision,
			},
		}
		for _, p := range strings.Split(*platforms, ",") {
			spec.Binaries[p] = filepath.Join(*bin, strings.ReplaceAll(p, "/", "_"), name)
		}
		idx, err := images.Build(spec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ref := fmt.Sprintf("%s/%s:%s", *registry, name, *tag)
		dst := filepath.Join(*out, name+".tar")
		if err := images.WriteArchive(dst, idx, ref); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		digest, err := idx.Digest()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st, err := os.Stat(dst)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Printf("%s  %s  %s  %.1f MiB\n", dst, ref, digest, float64(st.Size())/(1<<20))
	}
	return errors.Join(errs...)
}
