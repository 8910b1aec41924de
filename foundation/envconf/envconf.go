// Package envconf declares a service's settings once, as tagged struct fields, and reads them
// from environment variables. The same declaration gives the loader, the start-up log line,
// the `settings` subcommand, .env.example and the tables of docs/configuration.md, so that a
// default is written in one place.
//
// A setting is an exported field with an `env` tag; a struct field without one holds more
// settings, its `envPrefix` tag prefixing their names. The tags:
//
//	env:"NAME"       the variable, after the prefix the loader is given (CART_ + MAX_QUANTITY)
//	default:"V"      its value when unset or empty; a field without one defaults to the value
//	                 it holds when Load is called (the listen addresses each service sets)
//	dev:"V"          its default in development, when that differs (the public development
//	                 secrets, demo data on): production refuses this value, and requires the
//	                 variable when there is no default
//	example:"V"      the value .env.example shows, when not the default (APP_ENV=development)
//	empty:"off"      set to the empty string it is off (the zero value), not the default
//	oneof:"a,b"      the values allowed (compared in lower case)
//	min:"1" max:"9"  bounds of an integer or a duration; a duration is positive unless min:"0s"
//	help:"text"      what it is for, in .env.example, the docs and `<service> settings`
//
// github.com/caarlos0/env/v11 turns the strings into typed fields (its `env`, `envPrefix` and
// `envSeparator` tags; a type with UnmarshalText parses itself). It knows no development and
// production, so envconf works out each variable's string first: the value set, else the
// default of the environment. Rules across settings (a certificate needs its key) are the
// caller's, after Load.
package envconf

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/acme/shop/foundation/secret"
)

// Lookup looks a variable up, as os.LookupEnv does: set reports whether it is set, even to
// the empty string.
type Lookup func(name string) (value string, set bool)

// Map is an environment of the variables of m (tests).
func Map(m map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// Get returns the variable's value, "" when it is unset.
func (l Lookup) Get(name string) string {
	v, _ := l(name)
	return v
}

// Setting is one declared variable.
type Setting struct {
	// Name is the variable, prefix included.
	Name string
	// Default is its value when unset or empty; "" when it has none.
	Default string
	// Dev is its default in development when that differs; production refuses it.
	Dev string
	// Example is the value .env.example shows when not Default.
	Example string
	// Help says what it is for.
	Help string
	// OneOf lists the values allowed; Min and Max bound a number or a duration.
	OneOf    []string
	Min, Max string
	// Switch: set to the empty string, the setting is off rather than Default.
	Switch bool
	// Secret: the value is a secret.Value.
	Secret bool

	index []int
	field reflect.StructField
}

// Required reports whether production requires the variable: it has a development default
// but none in production.
func (s Setting) Required() bool { return s.Dev != "" && s.Default == "" }

var secretType = reflect.TypeFor[secret.Value]()

// Declare lists the settings that cfg, a pointer to a struct, declares under prefix, in field
// order.
func Declare(cfg any, prefix string) ([]Setting, error) {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("envconf: %T is not a pointer to a struct", cfg)
	}
	var out []Setting
	if err := declare(v.Elem(), prefix, nil, &out); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, s := range out {
		if seen[s.field.Name] {
			// Load names a bad variable by its field (caarlos0/env reports field names).
			return nil, fmt.Errorf("envconf: %T declares two settings in fields called %s", cfg, s.field.Name)
		}
		seen[s.field.Name] = true
	}
	return out, nil
}

func declare(v reflect.Value, prefix string, index []int, out *[]Setting) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("env"), ",")
		idx := append(slices.Clone(index), i)
		switch {
		case name == "-":
			continue
		case name == "" && f.Type.Kind() == reflect.Struct:
			if err := declare(v.Field(i), prefix+f.Tag.Get("envPrefix"), idx, out); err != nil {
				return err
			}
			continue
		case name == "":
			continue
		}
		if opts != "" {
			return fmt.Errorf("envconf: %s: the env tag's options (%s) are not used here", name, opts)
		}
		s := Setting{
			Name: prefix + name, Help: f.Tag.Get("help"), Dev: f.Tag.Get("dev"), Example: f.Tag.Get("example"),
			Min: f.Tag.Get("min"), Max: f.Tag.Get("max"), Switch: f.Tag.Get("empty") == "off",
			Secret: f.Type == secretType, index: idx, field: f,
		}
		if o := f.Tag.Get("oneof"); o != "" {
			s.OneOf = strings.Split(o, ",")
		}
		if d, ok := f.Tag.Lookup("default"); ok {
			s.Default = d
		} else if fv := v.Field(i); !fv.IsZero() {
			s.Default = fmt.Sprint(fv.Interface())
		}
		if s.Help == "" {
			return fmt.Errorf("envconf: %s has no help", s.Name)
		}
		for _, b := range []string{s.Min, s.Max} {
			if b == "" {
				continue
			}
			var err error
			switch {
			case f.Type == reflect.TypeFor[time.Duration]():
				_, err = time.ParseDuration(b)
			case isInt(f.Type):
				_, err = strconv.ParseInt(b, 10, 64)
			default:
				err = errors.New("bounds apply to numbers and durations")
			}
			if err != nil {
				return fmt.Errorf("envconf: %s: bound %q: %w", s.Name, b, err)
			}
		}
		*out = append(*out, s)
	}
	return nil
}

// Load reads into cfg, a pointer to a struct, the settings it declares under prefix, looking
// them up with lookup; production selects the production defaults and refusals. It reports
// every bad variable at once, and returns the secrets that took their public development
// value, for the start-up log to warn about.
func Load(cfg any, prefix string, lookup Lookup, production bool) (devSecrets []string, err error) {
	settings, err := Declare(cfg, prefix)
	if err != nil {
		return nil, err
	}
	environ := map[string]string{}
	var errs []error
	fail := func(s Setting, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", s.Name, fmt.Sprintf(format, args...)))
	}
	for _, s := range settings {
		value, set := lookup(s.Name)
		value = strings.TrimSpace(value)
		switch {
		case value != "":
		case set && s.Switch:
			continue
		case !production && s.Dev != "":
			value = s.Dev
			if s.Secret {
				devSecrets = append(devSecrets, s.Name)
			}
		case production && s.Required():
			fail(s, "is required in production")
			continue
		default:
			value = s.Default
		}
		if s.OneOf != nil {
			value = strings.ToLower(value)
			if !slices.Contains(s.OneOf, value) {
				fail(s, "want one of %s, got %q", strings.Join(s.OneOf, ", "), value)
				continue
			}
		}
		environ[s.Name] = value
	}

	// Only what environ holds gets parsed: the rest (a setting switched off) must not keep the
	// value cfg held as its default.
	v := reflect.ValueOf(cfg).Elem()
	for _, s := range settings {
		v.FieldByIndex(s.index).SetZero()
	}
	unparsed := map[string]bool{}
	if err := parse(cfg, prefix, environ); err != nil {
		errs = append(errs, named(err, settings, environ, unparsed)...)
	}
	for _, s := range settings {
		if _, ok := environ[s.Name]; ok && !unparsed[s.Name] {
			if msg := outOfBounds(s, v.FieldByIndex(s.index)); msg != "" {
				fail(s, "%s, got %q", msg, environ[s.Name])
			}
		}
	}
	if production {
		errs = append(errs, refuseDevValues(cfg, prefix, settings, environ, unparsed)...)
	}
	return devSecrets, errors.Join(errs...)
}

// parse fills cfg from environ with caarlos0/env.
func parse(cfg any, prefix string, environ map[string]string) error {
	return env.ParseWithOptions(cfg, env.Options{
		Environment: environ,
		Prefix:      prefix,
		FuncMap: map[reflect.Type]env.ParserFunc{
			reflect.TypeFor[bool]():     func(v string) (any, error) { return parseBool(v) },
			reflect.TypeFor[[]string](): func(v string) (any, error) { return List(v), nil },
		},
	})
}

// refuseDevValues reports the settings production was given their development value.
func refuseDevValues(cfg any, prefix string, settings []Setting, environ map[string]string, unparsed map[string]bool) []error {
	devEnv := map[string]string{}
	for _, s := range settings {
		if s.Dev != "" {
			devEnv[s.Name] = s.Dev
		}
	}
	devCfg := reflect.New(reflect.TypeOf(cfg).Elem())
	if err := parse(devCfg.Interface(), prefix, devEnv); err != nil {
		return []error{fmt.Errorf("envconf: a development default does not parse: %w", err)}
	}
	got := reflect.ValueOf(cfg).Elem()
	var errs []error
	for _, s := range settings {
		if _, set := environ[s.Name]; !set || s.Dev == "" || unparsed[s.Name] {
			continue
		}
		if !reflect.DeepEqual(got.FieldByIndex(s.index).Interface(), devCfg.Elem().FieldByIndex(s.index).Interface()) {
			continue
		}
		if s.Secret {
			errs = append(errs, fmt.Errorf("%s: is the public development secret; production needs its own", s.Name))
		} else {
			errs = append(errs, fmt.Errorf("%s: production refuses %s, development's default", s.Name, s.Dev))
		}
	}
	return errs
}

// named turns caarlos0/env's errors, which name struct fields, into errors naming variables,
// and marks those variables unparsed.
func named(err error, settings []Setting, environ map[string]string, unparsed map[string]bool) []error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return []error{err}
	}
	byField := map[string]Setting{}
	for _, s := range settings {
		byField[s.field.Name] = s
	}
	var out []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if s, ok := byField[pe.Name]; ok {
				out = append(out, fmt.Errorf("%s: %s", s.Name, describe(s, pe.Err, environ[s.Name])))
				unparsed[s.Name] = true
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// describe says what a variable that did not parse should be. A secret's value is not
// repeated.
func describe(s Setting, err error, value string) string {
	switch {
	case s.Secret:
		return err.Error()
	case s.field.Type == reflect.TypeFor[time.Duration]():
		return fmt.Sprintf("want a duration such as 10s, got %q", value)
	case s.field.Type.Kind() == reflect.Bool:
		return fmt.Sprintf("want true or false, got %q", value)
	case isInt(s.field.Type):
		return fmt.Sprintf("want an integer%s, got %q", bounds(s), value)
	}
	return err.Error()
}

func isInt(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return t != reflect.TypeFor[time.Duration]()
	}
	return false
}

func bounds(s Setting) string {
	if s.Min != "" && s.Max != "" {
		return fmt.Sprintf(" from %s to %s", s.Min, s.Max)
	}
	return ""
}

// outOfBounds checks a number or a duration against the setting's bounds, and says what it
// should be when it is not within them.
func outOfBounds(s Setting, v reflect.Value) string {
	switch {
	case v.Type() == reflect.TypeFor[time.Duration]():
		d := time.Duration(v.Int())
		lo, hi := time.Duration(1), time.Duration(1<<63-1)
		if s.Min != "" {
			lo, _ = time.ParseDuration(s.Min)
		}
		if s.Max != "" {
			hi, _ = time.ParseDuration(s.Max)
		}
		if d < lo || d > hi {
			if lo == 0 {
				return "want a duration such as 0s or 5s"
			}
			return "want a positive duration such as 10s"
		}
	case isInt(v.Type()) && (s.Min != "" || s.Max != ""):
		lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
		if s.Min != "" {
			lo, _ = strconv.ParseInt(s.Min, 10, 64)
		}
		if s.Max != "" {
			hi, _ = strconv.ParseInt(s.Max, 10, 64)
		}
		if n := v.Int(); n < lo || n > hi {
			return "want an integer" + bounds(s)
		}
	}
	return ""
}

// parseBool reads true/false, 1/0, yes/no and on/off.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, errors.New("not a boolean")
}

// List splits a comma-separated list, trimming each item and dropping empty ones.
func List(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// LogValue is the settings of cfg as a log group, each under its variable's name in lower
// case, prefix removed: secrets log as [REDACTED] by their type.
func LogValue(cfg any, prefix string) slog.Value {
	settings, err := Declare(cfg, prefix)
	if err != nil {
		return slog.StringValue(err.Error())
	}
	v := reflect.ValueOf(cfg).Elem()
	attrs := make([]slog.Attr, 0, len(settings))
	for _, s := range settings {
		attrs = append(attrs, slog.Any(strings.ToLower(strings.TrimPrefix(s.Name, prefix)), v.FieldByIndex(s.index).Interface()))
	}
	return slog.GroupValue(attrs...)
}
