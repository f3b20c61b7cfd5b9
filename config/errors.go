package config

import (
	"strconv"
	"strings"
)

// Error is one thing wrong in a config file: where it is, which key, what.
type Error struct {
	File string // the file as named to Load or Parse; "" for Config.Validate
	// Line is 1-based; 0 when neither the key nor a related key is in the
	// file (a default made invalid by another key) or the file is unknown.
	Line    int
	Key     string // full path, like "delivery.perwebhook" or "webhooks[0].uri"; "" for the file as a whole
	Message string
}

// Error formats e as "FILE:LINE: KEY: MESSAGE", leaving out the parts it
// lacks ("FILE: KEY: MESSAGE" without a line).
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Errors is everything wrong in a config file, in the order of the file's
// lines. Load, Parse and Validate return it as their error; take it back
// with errors.As.
type Errors []*Error

// Error puts each error on its own line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}
