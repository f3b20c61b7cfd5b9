package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/regwebhook/regwebhook/bridge/rule"
)

// Load reads the config file at path; see Parse. A file that cannot be read
// is an error that wraps the os error.
func Load(path string, getenv func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	return Parse(data, path, getenv)
}

// Parse reads a config file's contents: Default() first, then the file's
// values over it, then every check of Validate. filename names the file in
// errors. getenv looks up the variables of ${NAME} (os.LookupEnv in
// production). Webhooks get their Defaults and Source FromConfig.
//
// The error, if any, is an Errors holding everything wrong, in line order:
// YAML syntax, unknown keys, values of the wrong type, ${...} that cannot be
// expanded, and values that Validate refuses.
func Parse(data []byte, filename string, getenv func(string) (string, bool)) (*Config, error) {
	cfg, _, errs := parse(data, filename, getenv)
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// parse is Parse, also returning the line of every key in the file.
func parse(data []byte, filename string, getenv func(string) (string, bool)) (*Config, map[string]int, Errors) {
	cfg := Default()
	root, synErr := document(data, filename)
	if synErr != nil {
		return nil, nil, Errors{synErr}
	}
	d := &decoder{file: filename, getenv: getenv, lines: map[string]int{}}
	if root != nil {
		d.root(root, cfg)
	}
	for i, w := range cfg.Webhooks {
		if w.Actions != nil && len(w.Actions) == 0 { // "actions: []"; left out, it is the default
			key := fmt.Sprintf("webhooks[%d].actions", i)
			d.errs = append(d.errs, &Error{File: filename, Line: d.lines[key], Key: key,
				Message: "must name at least one of push, delete, pull (leave the key out for push and delete)"})
		}
		if len(w.Headers) == 0 {
			w.Headers = nil // "headers: {}" is no headers, as the store gives it back
		}
		w.Defaults()
		w.Source = rule.FromConfig
	}
	errs := d.errs
	for _, e := range validate(cfg, filename, d.lines) {
		if !d.failed(e.Key) {
			errs = append(errs, e)
		}
	}
	slices.SortStableFunc(errs, func(a, b *Error) int { return cmp.Compare(lineOrder(a), lineOrder(b)) })
	return cfg, d.lines, errs
}

// lineOrder sorts errors without a line after the others.
func lineOrder(e *Error) int {
	if e.Line == 0 {
		return math.MaxInt
	}
	return e.Line
}

// document returns the file's one YAML document, nil when the file is empty.
func document(data []byte, filename string) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, nil
	} else if err != nil {
		return nil, syntaxError(filename, data, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, &Error{File: filename, Line: next.Line, Message: "syntax: a second YAML document; the file must hold one"}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxError(filename, data, err)
	}
	return doc.Content[0], nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems start the messages of yaml's parser, as opposed to its
// scanner. yaml.v3 gives their lines 0-based, and none for the first line.
var parserProblems = []string{
	"did not find expected ',' or", "did not find expected '-' indicator",
	"did not find expected <document start>", "did not find expected key",
	"did not find expected node content", "found duplicate %",
	"found incompatible YAML document", "found undefined tag handle",
}

// syntaxError turns yaml's "yaml: line N: message" into an Error on the
// line in the file.
func syntaxError(filename string, data []byte, err error) *Error {
	e := &Error{File: filename, Message: "syntax: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Message = "syntax: " + m[2]
	}
	problem := strings.TrimPrefix(e.Message, "syntax: ")
	for _, p := range parserProblems {
		if strings.HasPrefix(problem, p) {
			e.Line++
			break
		}
	}
	if strings.HasPrefix(problem, "did not find expected ',' or") && bytes.Contains(data, []byte("${")) {
		e.Message += ` (inside {...} or [...], quote a value that holds ${...}: "${NAME}")`
	}
	return e
}
