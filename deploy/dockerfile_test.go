//go:build linux

package deploy_test

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/config"
)

// image is what the Dockerfile's final stage makes of the image.
type image struct {
	Base        string
	BasePinned  bool // scratch, or a digest: the same bytes on every build
	User        string
	Expose      []string
	Env         map[string]string
	Volumes     []string
	Healthcheck []string
	Entrypoint  []string
	Cmd         []string
	Copies      map[string]string // destination: source, of COPY --from=build
}

var pinnedRef = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)

func finalImage(t *testing.T, instrs []instruction) image {
	t.Helper()
	img := image{Env: map[string]string{}, Copies: map[string]string{}}
	for _, in := range stage(instrs, -1) {
		switch in.Cmd {
		case "FROM":
			w := words(in.Args)
			w = slices.DeleteFunc(w, func(s string) bool { return strings.HasPrefix(s, "--") })
			img.Base = w[0]
			img.BasePinned = img.Base == "scratch" || pinnedRef.MatchString(img.Base)
		case "USER":
			img.User = in.Args
		case "EXPOSE":
			img.Expose = append(img.Expose, words(in.Args)...)
		case "ENV":
			for _, kv := range words(in.Args) {
				k, v, _ := strings.Cut(kv, "=")
				img.Env[k] = v
			}
		case "VOLUME":
			if v := jsonArgs(in.Args); v != nil {
				img.Volumes = append(img.Volumes, v...)
			} else {
				img.Volumes = append(img.Volumes, words(in.Args)...)
			}
		case "HEALTHCHECK":
			_, cmd, ok := strings.Cut(in.Args, "CMD ")
			if ok {
				img.Healthcheck = jsonArgs(cmd)
			}
		case "ENTRYPOINT":
			img.Entrypoint = jsonArgs(in.Args)
		case "CMD":
			img.Cmd = jsonArgs(in.Args)
		case "COPY":
			w := words(in.Args)
			if len(w) == 3 && w[0] == "--from=build" {
				img.Copies[w[2]] = w[1]
			}
		}
	}
	return img
}

// The image's last stage: a pinned base, a numeric user that is not root,
// port 5080, a health check by the binary itself, the config and data
// paths of the docs, and "regwebhook serve".
func TestDockerfileImage(t *testing.T) {
	got := finalImage(t, parseDockerfile(t, filepath.Join(root(t), "Dockerfile")))
	want := image{
		Base:        "scratch",
		BasePinned:  true,
		User:        "65532:65532",
		Expose:      []string{"5080"},
		Env:         map[string]string{"REGWEBHOOK_CONFIG": "/etc/regwebhook/config.yml"},
		Volumes:     []string{"/var/lib/regwebhook"},
		Healthcheck: []string{"/regwebhook", "health"},
		Entrypoint:  []string{"/regwebhook"},
		Cmd:         []string{"serve"},
		Copies:      map[string]string{"/": "/rootfs/", "/regwebhook": "/out/regwebhook"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("final stage of the Dockerfile (-want +got):\n%s", diff)
	}
	// What any edit must keep, whatever the diff above is updated to.
	uid, _, _ := strings.Cut(got.User, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %q: want a numeric user other than root (Kubernetes' runAsNonRoot checks the number)", got.User)
	}
	if !got.BasePinned {
		t.Errorf("FROM %s: pin the final base by digest (image@sha256:...) or use scratch", got.Base)
	}
	if len(got.Healthcheck) < 2 || got.Healthcheck[0] != got.Entrypoint[0] || got.Healthcheck[1] != "health" {
		t.Errorf("HEALTHCHECK %q: want the binary's own `health` (the image has no curl)", got.Healthcheck)
	}
}

// The image's own config file passes `regwebhook config check`, listens on
// the EXPOSEd port and keeps its data in the VOLUME.
func TestImageConfig(t *testing.T) {
	cfg, err := config.Load(filepath.Join(root(t), "deploy", "config.yml"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("deploy/config.yml: %v", err)
	}
	got := []string{cfg.HTTP.Addr, cfg.Store.Driver, cfg.Store.Embedded.Path}
	if diff := cmp.Diff([]string{":5080", "embedded", "/var/lib/regwebhook"}, got); diff != "" {
		t.Errorf("addr, store and data path (-want +got):\n%s", diff)
	}
}

// The build context leaves out secrets and local state, and keeps what the
// build reads.
func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	patterns := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns[strings.TrimPrefix(line, "/")] = true
		}
	}
	for _, p := range []string{".env", ".git", "regwebhook-data", "regwebhook"} {
		if !patterns[p] {
			t.Errorf(".dockerignore does not leave out %s", p)
		}
	}
	for _, p := range []string{"go.mod", "go.sum", "cmd", "bridge", "config", "internal", "deploy", "deploy/config.yml", "*.go"} {
		if patterns[p] {
			t.Errorf(".dockerignore leaves out %s, which the build needs", p)
		}
	}
}

// goBuild returns the environment and arguments of the Dockerfile's go
// build line in its build stage, with the build arguments set for this
// machine, and the path it writes the binary to.
func goBuild(t *testing.T, instrs []instruction, version string) (env, args []string, out string) {
	t.Helper()
	vars := map[string]string{"VERSION": version, "TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH}
	for _, in := range stageNamed(t, instrs, "build") {
		if in.Cmd != "RUN" || !strings.Contains(in.Args, "go build") {
			continue
		}
		w := words(expand(t, in.Args, vars))
		for len(w) > 0 && strings.HasPrefix(w[0], "--") {
			w = w[1:] // RUN's own flags: --mount=...
		}
		for len(w) > 0 && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(w[0]) {
			env, w = append(env, w[0]), w[1:]
		}
		if len(w) < 2 || w[0] != "go" || w[1] != "build" || slices.Contains(w, "&&") || slices.Contains(w, ";") {
			t.Fatalf("Dockerfile:%d: want one command, [ENV=value ...] go build ...; got %q", in.Line, w)
		}
		i := slices.Index(w, "-o")
		if i < 0 || i+1 >= len(w) {
			t.Fatalf("Dockerfile:%d: go build has no -o", in.Line)
		}
		return env, w[1:], w[i+1]
	}
	t.Fatal("the build stage has no go build line")
	return nil, nil, ""
}

// The binary built with the Dockerfile's own go build line: static (no
// interpreter, no dynamic section: it runs on an empty base), stripped, with
// the version given as a build argument; and it serves as the image's user.
func TestImageBinary(t *testing.T) {
	instrs := parseDockerfile(t, filepath.Join(root(t), "Dockerfile"))
	env, args, out := goBuild(t, instrs, "deploytest")
	if got := finalImage(t, instrs).Copies["/regwebhook"]; got != out {
		t.Errorf("the final stage copies %s to /regwebhook, the build writes %s", got, out)
	}
	// A folder every user may read: the binary runs as 65532 below.
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "regwebhook")
	args[slices.Index(args, out)] = bin
	cmd := exec.Command("go", args...)
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s go %s: %v\n%s", strings.Join(env, " "), strings.Join(args, " "), err, b)
	}

	t.Run("static", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("the binary has a %v program header: it is not static", p.Type)
			}
		}
		if f.Section(".dynamic") != nil || f.Section(".interp") != nil {
			t.Error("the binary has a .dynamic or .interp section: it is not static")
		}
		if f.Section(".symtab") != nil {
			t.Error("the binary has a symbol table: -ldflags -s did not apply")
		}
		out, err := exec.Command(bin, "version").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "regwebhook deploytest" {
			t.Errorf("regwebhook version: %q, %v; want regwebhook deploytest", out, err)
		}
	})
	t.Run("serves unprivileged", func(t *testing.T) { servesUnprivileged(t, bin) })
}

// servesUnprivileged runs the binary as the image's user (65532, not root)
// with its config and data where the image has them: /readyz answers,
// `regwebhook health` exits 0, and SIGTERM ends it with status 0. The data
// directory must be the user's: one owned by root is refused.
func servesUnprivileged(t *testing.T, bin string) {
	if os.Getuid() != 0 {
		t.Skip("running the binary as uid 65532 needs root")
	}
	fs := imageFS(t)
	cred := &syscall.Credential{Uid: 65532, Gid: 65532}
	env := []string{"REGWEBHOOK_CONFIG=" + fs.config, "REGWEBHOOK_ADMIN_TOKEN=admin-token", "HOME=/nonexistent"}

	t.Run("data directory of root", func(t *testing.T) {
		if err := os.Chown(fs.data, 0, 0); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := os.Chown(fs.data, 65532, 65532); err != nil {
				t.Fatal(err)
			}
		}()
		cmd := exec.Command(bin, "serve")
		cmd.Env, cmd.SysProcAttr = env, &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "permission denied") {
			t.Errorf("serve on a data directory it cannot write: %v\n%s\nwant exit status 1, permission denied", err, out)
		}
	})

	cmd := exec.Command(bin, "serve")
	cmd.Env, cmd.SysProcAttr = env, &syscall.SysProcAttr{Credential: cred}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	log := readLog(stderr)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	exited := false
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill()
			<-waited
		}
	})
	addr := log.serving(t)

	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %s, want 200", resp.Status)
	}
	health := exec.Command(bin, "health", "--server", "http://"+addr)
	health.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := health.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "ready") {
		t.Errorf("regwebhook health: %v\n%s", err, out)
	}
	st, err := os.Stat(filepath.Join(fs.data, "regwebhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; uid != 65532 {
		t.Errorf("regwebhook.db is owned by uid %d, want 65532: the process did not run as the image's user", uid)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		exited = true
		if err != nil {
			t.Errorf("serve after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not end within 30s of SIGTERM")
	}
}

// paths are the image's files, rooted in a temporary folder.
type paths struct{ config, data string }

// imageFS lays out the image's config and data directory under a temporary
// folder, as the Dockerfile does: the image's config.yml, root's and
// readable by all, pointed at the data directory here and a free port; the
// data directory the user's, 0700.
func imageFS(t *testing.T) paths {
	t.Helper()
	base := t.TempDir()
	// t.TempDir's folders are 0700: let the user walk through them.
	for _, d := range []string{base, filepath.Dir(base)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := paths{config: filepath.Join(base, "etc/regwebhook/config.yml"), data: filepath.Join(base, "var/lib/regwebhook")}
	src, err := os.ReadFile(filepath.Join(root(t), "deploy", "config.yml"))
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.ReplaceAll(string(src), "/var/lib/regwebhook", p.data)
	doc = strings.Replace(doc, `addr: ":5080"`, `addr: "127.0.0.1:0"`, 1)
	if !strings.Contains(doc, p.data) || !strings.Contains(doc, "127.0.0.1:0") {
		t.Fatal("deploy/config.yml no longer has the data path and address this test rewrites")
	}
	if err := os.MkdirAll(filepath.Dir(p.config), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.config, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(p.data, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(p.data), filepath.Dir(filepath.Dir(p.data))} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(p.data, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveLog follows the JSON log of a serve process.
type serveLog struct {
	addr  chan string // the address of the "regwebhook serving" line
	ended chan string // the whole log, once the process closed it
}

func readLog(r io.Reader) *serveLog {
	l := &serveLog{addr: make(chan string, 1), ended: make(chan string, 1)}
	go func() {
		var all strings.Builder
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var entry struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &entry) == nil && entry.Msg == "regwebhook serving" {
				l.addr <- entry.Addr
			}
			all.WriteString(sc.Text() + "\n")
		}
		l.ended <- all.String()
	}()
	return l
}

// serving waits for the "regwebhook serving" line and returns its address.
func (l *serveLog) serving(t *testing.T) string {
	t.Helper()
	select {
	case addr := <-l.addr:
		return addr
	case log := <-l.ended:
		t.Fatalf("serve ended without serving:\n%s", log)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not log \"regwebhook serving\" within 30s")
	}
	return ""
}
