package config

import "testing"

// env is the environment the tests see.
func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

var testEnv = env(map[string]string{"SET": "value", "EMPTY": "", "DOLLAR": "${SET}"})

func TestExpand(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "plain", want: "plain"},
		{in: "", want: ""},
		{in: "${SET}", want: "value"},
		{in: "a${SET}b${SET}", want: "avaluebvalue"},
		{in: "${EMPTY}", want: ""},
		{in: "${SET:-default}", want: "value"},
		{in: "${UNSET:-default}", want: "default"},
		{in: "${EMPTY:-default}", want: "default"},
		{in: "${UNSET:-}", want: ""},
		{in: "${UNSET:-a b:c # d}", want: "a b:c # d"},
		{in: "$$", want: "$"},
		{in: "$${SET}", want: "${SET}"},
		{in: "$$$$", want: "$$"},
		{in: "$HOME and $5", want: "$HOME and $5"},
		{in: "end$", want: "end$"},
		{in: "${DOLLAR}", want: "${SET}"}, // a value is not expanded again
		{in: "${UNSET}", err: "environment variable UNSET is not set (write ${UNSET:-} to allow it unset)"},
		{in: "a ${SET", err: `"${SET" has no } to close it`},
		{in: "${}", err: "${} is not ${NAME} or ${NAME:-default} (NAME: letters, digits and _, not first a digit)"},
		{in: "${1A}", err: "${1A} is not ${NAME} or ${NAME:-default} (NAME: letters, digits and _, not first a digit)"},
		{in: "${A-b}", err: "${A-b} is not ${NAME} or ${NAME:-default} (NAME: letters, digits and _, not first a digit)"},
		{in: "${A:-${B}}", err: "${A:-${B}: a default cannot hold another ${...}"},
	} {
		got, err := expand(tc.in, testEnv)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tc.want || gotErr != tc.err {
			t.Errorf("expand(%q) = %q, %q; want %q, %q", tc.in, got, gotErr, tc.want, tc.err)
		}
	}
}
