package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var durationType = reflect.TypeFor[time.Duration]()

// decoder lays a YAML node tree over a Config, key by key, following the
// fields' yaml tags. It records every error and the line of every key.
type decoder struct {
	file   string
	getenv func(string) (string, bool)
	lines  map[string]int // full key path → line of the key, or of the list item
	errs   Errors
}

func (d *decoder) errorf(n *yaml.Node, key, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Key: key, Message: fmt.Sprintf(format, args...)})
}

// failed reports whether key, or a key holding it, could not be decoded:
// Validate's complaints about its value would only repeat that.
func (d *decoder) failed(key string) bool {
	for _, e := range d.errs {
		if key == e.Key || strings.HasPrefix(key, e.Key+".") || strings.HasPrefix(key, e.Key+"[") {
			return true
		}
	}
	return false
}

func (d *decoder) root(n *yaml.Node, cfg *Config) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "", "the file must be a mapping of keys to values, like \"version: 1\", got %s", describe(n))
		return
	}
	d.decode(n, reflect.ValueOf(cfg).Elem(), "")
}

// decode sets v from n. key is n's full path. A mapping sets only the
// fields it names; an empty one (null) keeps v's defaults. A list or a map
// replaces v's whole value; null empties it. A null scalar is the zero value.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	null := n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), key)
	case reflect.Struct:
		if null {
			return
		}
		d.pairs(n, key, func(k, val *yaml.Node, path string) {
			f := field(v, k.Value)
			if !f.IsValid() {
				d.errorf(k, path, "unknown key (known here: %s)", strings.Join(yamlKeys(v.Type()), ", "))
				return
			}
			d.decode(val, f, path)
		})
	case reflect.Map:
		v.Set(reflect.Zero(v.Type()))
		if null {
			return
		}
		v.Set(reflect.MakeMap(v.Type()))
		d.pairs(n, key, func(k, val *yaml.Node, path string) {
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, path)
			v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
		})
	case reflect.Slice:
		v.Set(reflect.Zero(v.Type()))
		if null {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, key, "must be a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			path := fmt.Sprintf("%s[%d]", key, i)
			d.lines[path] = item.Line
			d.decode(item, s.Index(i), path)
		}
		v.Set(s)
	default:
		d.scalar(n, v, key, null)
	}
}

// pairs calls set for each key of mapping n, with its value and full path,
// after those that a merge key (<<) brings in; a key given twice is an
// error. Keys are taken as written: never expanded, case-sensitive.
func (d *decoder) pairs(n *yaml.Node, key string, set func(k, v *yaml.Node, path string)) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, key, "must be a mapping, got %s", describe(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].ShortTag() != "!!merge" {
			continue
		}
		merged := []*yaml.Node{n.Content[i+1]}
		if m := n.Content[i+1]; m.Kind == yaml.SequenceNode {
			merged = m.Content
		}
		for j := len(merged) - 1; j >= 0; j-- { // the first of a list wins
			d.pairs(merged[j], key, set)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, key, "a key must be a name, got %s", describe(k))
			continue
		}
		path := pathName(k.Value)
		if key != "" {
			path = key + "." + path
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, path, "is given twice (first on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		d.lines[path] = k.Line
		set(k, val, path)
	}
}

// pathName is a key as its path shows it: quoted when it holds anything
// that is not plainly printable (a line break would forge a line of
// Errors), as written otherwise.
func pathName(k string) string {
	if q := strconv.Quote(k); q[1:len(q)-1] != k {
		return q
	}
	return k
}

// scalar sets v from a scalar after expanding its ${...}. A duration needs
// a unit ("10s"; a bare number other than 0 is refused). A value changed by
// expansion is read as if it had been written unquoted, so
// "${WORKERS:-32}" sets an integer.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, key string, null bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, key, "must be %s, got %s", want(v.Type()), describe(n))
		return
	}
	if null {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	s, err := expand(n.Value, d.getenv)
	if err != nil {
		d.errorf(n, key, "%v", err)
		return
	}
	switch {
	case v.Type() == durationType:
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.errorf(n, key, "must be %s, got %q", want(v.Type()), s)
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.String:
		v.SetString(s)
	default:
		c := *n
		if s != n.Value {
			c.Value, c.Tag, c.Style = s, "", 0
		}
		if err := c.Decode(v.Addr().Interface()); err != nil {
			d.errorf(n, key, "must be %s, got %q", want(v.Type()), s)
		}
	}
}

// field returns the field of struct v whose yaml key is key, or the zero
// Value.
func field(v reflect.Value, key string) reflect.Value {
	for i := range v.NumField() {
		if yamlKey(v.Type().Field(i)) == key && key != "" {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

// yamlKeys lists the keys struct type t takes, in order.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if k := yamlKey(t.Field(i)); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

func yamlKey(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if k == "-" || !f.IsExported() {
		return ""
	}
	return k
}

func want(t reflect.Type) string {
	switch {
	case t == durationType:
		return `a duration with a unit, like "10s", "1m30s" or "24h"`
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "an integer"
	}
	return t.String()
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}
