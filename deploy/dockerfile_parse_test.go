package deploy_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository's top folder; go test runs in deploy/.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// instruction is one Dockerfile instruction, its continuation lines joined.
type instruction struct {
	Line  int    // where it starts
	Cmd   string // upper case: FROM, RUN, ...
	Args  string
	Stage int // index of the FROM it follows, from 0
}

// parseDockerfile reads the instructions of a Dockerfile: comments and blank
// lines are skipped (inside a continuation too, as Docker does), lines
// ending in a backslash continue on the next one.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out   []instruction
		cur   strings.Builder
		start int
		stage = -1
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		out = append(out, instruction{Line: start, Cmd: cmd, Args: strings.TrimSpace(args), Stage: stage})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur.Len() > 0 {
		t.Fatalf("%s: ends inside a continued line", path)
	}
	return out
}

// stage returns the instructions of one stage, -1 for the last.
func stage(instrs []instruction, n int) []instruction {
	if n < 0 && len(instrs) > 0 {
		n = instrs[len(instrs)-1].Stage
	}
	var out []instruction
	for _, in := range instrs {
		if in.Stage == n {
			out = append(out, in)
		}
	}
	return out
}

// stageNamed returns the instructions of the stage "FROM ... AS name".
func stageNamed(t *testing.T, instrs []instruction, name string) []instruction {
	t.Helper()
	for _, in := range instrs {
		if in.Cmd == "FROM" && strings.HasSuffix(strings.ToLower(in.Args), " as "+name) {
			return stage(instrs, in.Stage)
		}
	}
	t.Fatalf("no stage named %q", name)
	return nil
}

// words splits a shell command line at blanks, keeping quoted text
// together and removing the quotes. It knows no escapes or expansions:
// enough for the one go build line.
func words(s string) []string {
	var (
		out   []string
		cur   strings.Builder
		quote rune
		in    bool
	)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// jsonArgs decodes the exec form of ENTRYPOINT, CMD and HEALTHCHECK CMD;
// the shell form gives nil.
func jsonArgs(s string) []string {
	var out []string
	if json.Unmarshal([]byte(s), &out) != nil {
		return nil
	}
	return out
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// expand replaces ${NAME} and $NAME with vars[NAME], and fails the test on
// a name vars lacks.
func expand(t *testing.T, s string, vars map[string]string) string {
	t.Helper()
	return varRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := varRef.FindStringSubmatch(ref)
		name := m[1] + m[2]
		v, ok := vars[name]
		if !ok {
			t.Fatalf("the go build line uses $%s, which this test does not know", name)
		}
		return v
	})
}
