package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// applyEnv overrides scalar settings from SLUICE_<SECTION>_<KEY> variables,
// e.g. SLUICE_KAFKA_BROKERS=a:9092,b:9092 or SLUICE_CLICKHOUSE_ADDR. Lists of
// tenants, carriers and routes are file-only.
func applyEnv(cfg *Config, lookup func(string) (string, bool)) error {
	return walkEnv(reflect.ValueOf(cfg).Elem(), "SLUICE", lookup)
}

func walkEnv(v reflect.Value, prefix string, lookup func(string) (string, bool)) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := prefix + "_" + strings.ToUpper(strings.Split(f.Tag.Get("yaml"), ",")[0])
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			if err := walkEnv(fv, name, lookup); err != nil {
				return err
			}
			continue
		}
		raw, ok := lookup(name)
		if !ok || !settable(f.Type) {
			continue
		}
		if err := setScalar(fv, raw); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

var durationType = reflect.TypeFor[time.Duration]()

func settable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Int, reflect.Int64, reflect.Bool:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return false
}

func setScalar(v reflect.Value, raw string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(raw)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("not a whole number: %q", raw)
		}
		v.SetInt(n)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("not true or false: %q", raw)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Slice:
		var items []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		v.Set(reflect.ValueOf(items))
	}
	return nil
}

const mask = "*****"

// Redacted returns a copy safe to log: every field tagged secret:"true" that
// is set is replaced by a mask.
func (c Config) Redacted() Config {
	out := c
	out.Tenants = append([]Tenant(nil), c.Tenants...)
	out.Carriers = append([]Carrier(nil), c.Carriers...)
	redact(reflect.ValueOf(&out).Elem())
	return out
}

func redact(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			fv := v.Field(i)
			if f.Tag.Get("secret") != "true" {
				redact(fv)
				continue
			}
			switch fv.Kind() {
			case reflect.String:
				if fv.String() != "" {
					fv.SetString(mask)
				}
			case reflect.Slice:
				masked := make([]string, fv.Len())
				for j := range masked {
					masked[j] = mask
				}
				fv.Set(reflect.ValueOf(masked))
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			redact(v.Index(i))
		}
	}
}
