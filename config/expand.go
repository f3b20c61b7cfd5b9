package config

import (
	"fmt"
	"strings"
)

// expand replaces, in one parsed value, ${NAME} with the variable's value,
// ${NAME:-default} with the value or, when the variable is unset or empty,
// the default, and $$ with $. A $ followed by anything else stays as it is.
// It fails on an unset ${NAME} (set but empty is fine) and on bad syntax.
// The result is not expanded again.
func expand(s string, getenv func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$$"):
			b.WriteByte('$')
			s = s[2:]
		case strings.HasPrefix(s, "${"):
			end := strings.IndexByte(s, '}')
			if end < 0 {
				return "", fmt.Errorf("%q has no } to close it", s)
			}
			v, err := lookup(s[2:end], getenv)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			s = s[end+1:]
		default:
			b.WriteByte('$')
			s = s[1:]
		}
	}
}

// lookup resolves the inside of ${...}: NAME or NAME:-default.
func lookup(expr string, getenv func(string) (string, bool)) (string, error) {
	name, def, hasDef := strings.Cut(expr, ":-")
	if !isVarName(name) {
		return "", fmt.Errorf("${%s} is not ${NAME} or ${NAME:-default} (NAME: letters, digits and _, not first a digit)", expr)
	}
	if strings.Contains(def, "${") {
		return "", fmt.Errorf("${%s}: a default cannot hold another ${...}", expr)
	}
	v, ok := getenv(name)
	switch {
	case hasDef && v == "":
		return def, nil
	case !ok:
		return "", fmt.Errorf("environment variable %s is not set (write ${%s:-} to allow it unset)", name, name)
	}
	return v, nil
}

func isVarName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}
