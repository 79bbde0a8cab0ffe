// Package check renders the sluice Helm chart with Helm's own Go SDK and
// validates every manifest against the Kubernetes JSON schemas. Its tests
// are `make helm-check`. It is a module of its own, outside go.work, so
// Helm's many dependencies stay out of the services' builds.
package check

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	helmlint "helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"
)

// Object is one rendered manifest, decoded.
type Object struct {
	Source string // the template it came from
	Raw    map[string]any
}

// Kind, Name and APIVersion read the object's header.
func (o Object) Kind() string       { s, _ := o.Raw["kind"].(string); return s }
func (o Object) APIVersion() string { s, _ := o.Raw["apiVersion"].(string); return s }
func (o Object) Name() string {
	m, _ := o.Raw["metadata"].(map[string]any)
	s, _ := m["name"].(string)
	return s
}

// Render renders the chart with the given values files and --set values as
// `helm template` would for that Kubernetes version, and lints it. It uses
// Helm's template engine and linter directly: the install action would
// bring kubectl, registries and clients into the build for nothing.
func Render(chartDir, release, namespace, kubeVersion string, valueFiles, set []string) ([]Object, error) {
	vals, err := mergeValues(valueFiles, set)
	if err != nil {
		return nil, err
	}
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return nil, fmt.Errorf("load chart: %w", err)
	}
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		return nil, err
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	top, err := chartutil.ToRenderValues(chrt, vals, chartutil.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true}, caps)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	files, err := engine.Render(chrt, top)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	// After rendering: lint mode turns the templates' fail into a log line.
	if err := lint(chartDir, namespace, kv, vals); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		base := path.Base(name)
		if strings.HasPrefix(base, "_") || strings.HasSuffix(base, ".txt") {
			continue // partials and NOTES.txt
		}
		names = append(names, name)
	}
	slices.Sort(names)
	var out []Object
	for _, name := range names {
		objs, err := Decode(files[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for i := range objs {
			objs[i].Source = name
		}
		out = append(out, objs...)
	}
	return out, nil
}

// mergeValues is helm's -f and --set: files merged in order, then --set.
func mergeValues(valueFiles, set []string) (map[string]any, error) {
	vals := map[string]any{}
	for _, f := range valueFiles {
		v, err := chartutil.ReadValuesFile(f)
		if err != nil {
			return nil, fmt.Errorf("values %s: %w", f, err)
		}
		vals = mergeMaps(vals, v)
	}
	for _, s := range set {
		if err := strvals.ParseInto(s, vals); err != nil {
			return nil, fmt.Errorf("--set %s: %w", s, err)
		}
	}
	return vals, nil
}

func mergeMaps(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	for k, v := range b {
		if vm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(am, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// lint fails on Helm lint's warnings and errors (not its notes, such as a
// missing icon).
func lint(chartDir, namespace string, kv *chartutil.KubeVersion, vals map[string]any) error {
	res := helmlint.AllWithKubeVersion(chartDir, vals, namespace, kv)
	var errs []error
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			errs = append(errs, fmt.Errorf("lint: %s", m))
		}
	}
	return errors.Join(errs...)
}

// Decode splits a rendered manifest stream into objects.
func Decode(manifest string) ([]Object, error) {
	var out []Object
	for _, doc := range strings.Split(manifest, "\n---") {
		source := ""
		if i := strings.Index(doc, "# Source: "); i >= 0 {
			source, _, _ = strings.Cut(doc[i+len("# Source: "):], "\n")
		}
		var raw map[string]any
		if err := yaml.Unmarshal([]byte(doc), &raw); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if len(raw) == 0 {
			continue
		}
		out = append(out, Object{Source: source, Raw: raw})
	}
	return out, nil
}

// Validator checks objects against one Kubernetes version's strict JSON
// schemas (the layout of kubernetes-validate's and kubeconform's:
// <kind>-<group>-<version>.json next to _definitions.json) and against the
// vendored schemas of the CRDs the chart uses.
type Validator struct {
	kubeDir, crdDir string
	c               *jsonschema.Compiler
	cache           map[string]*jsonschema.Schema
}

// NewValidator reads schemas from kubeDir and crdDir.
func NewValidator(kubeDir, crdDir string) (*Validator, error) {
	if _, err := os.Stat(filepath.Join(kubeDir, "_definitions.json")); err != nil {
		return nil, fmt.Errorf("kubernetes schemas: %w (make helm-check fetches them)", err)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(fileLoader{defs: filepath.Join(kubeDir, "_definitions.json")})
	return &Validator{kubeDir: kubeDir, crdDir: crdDir, c: c, cache: map[string]*jsonschema.Schema{}}, nil
}

// fileLoader reads schemas from disk; the schemas refer to their shared
// definitions as "/api/_definitions.json", i.e. file:///api/_definitions.json.
type fileLoader struct{ defs string }

func (l fileLoader) Load(url string) (any, error) {
	path := strings.TrimPrefix(url, "file://")
	if strings.HasSuffix(path, "/_definitions.json") {
		path = l.defs
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

// SchemaFile names the schema of an apiVersion and kind:
// apps/v1 Deployment → deployment-apps-v1.json, v1 Service → service-v1.json,
// keda.sh/v1alpha1 ScaledObject → scaledobject-keda-v1alpha1.json.
func SchemaFile(apiVersion, kind string) string {
	group, version, found := strings.Cut(apiVersion, "/")
	if !found {
		return fmt.Sprintf("%s-%s.json", strings.ToLower(kind), apiVersion)
	}
	group, _, _ = strings.Cut(group, ".")
	return fmt.Sprintf("%s-%s-%s.json", strings.ToLower(kind), group, version)
}

// Validate checks one object; an object with no schema is an error.
func (v *Validator) Validate(o Object) error {
	name := SchemaFile(o.APIVersion(), o.Kind())
	sch, ok := v.cache[name]
	if !ok {
		path := filepath.Join(v.crdDir, name)
		if _, err := os.Stat(path); err != nil {
			path = filepath.Join(v.kubeDir, name)
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("%s %s: no schema %s", o.Kind(), o.Name(), name)
			}
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return err
		}
		if sch, err = v.c.Compile("file://" + abs); err != nil {
			return fmt.Errorf("schema %s: %w", name, err)
		}
		v.cache[name] = sch
	}
	// Round-trip through JSON so numbers are what the schema library expects.
	data, err := yaml.Marshal(o.Raw)
	if err != nil {
		return err
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(io.Reader(bytes.NewReader(js)))
	if err != nil {
		return err
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("%s %s (%s): %w", o.Kind(), o.Name(), o.Source, err)
	}
	return nil
}
