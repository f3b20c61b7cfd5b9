package deploy_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/distribution/v3/configuration"
	"github.com/google/go-cmp/cmp"

	"github.com/regwebhook/regwebhook/config"
)

// loadCompose loads docker-compose.yml with compose's own loader, as
// `docker compose` does, with the variables of the env files given (none:
// an empty environment, as in a fresh clone without .env).
func loadCompose(t *testing.T, envFiles ...string) (*types.Project, error) {
	t.Helper()
	opts := []cli.ProjectOptionsFn{cli.WithWorkingDirectory(root(t))}
	if len(envFiles) > 0 {
		opts = append(opts, cli.WithEnvFiles(envFiles...), cli.WithDotEnv)
	}
	po, err := cli.NewProjectOptions([]string{filepath.Join(root(t), "docker-compose.yml")}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return po.LoadProject(context.Background())
}

// demo loads the compose project with .env.example's values, as after
// `cp .env.example .env`.
func demo(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadCompose(t, filepath.Join(root(t), ".env.example"))
	if err != nil {
		t.Fatalf("docker-compose.yml with .env.example: %v", err)
	}
	return p
}

// mount returns the host path of the service's bind mount at target.
func mount(t *testing.T, s types.ServiceConfig, target string) string {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Target == target {
			if v.Type != types.VolumeTypeBind {
				t.Fatalf("%s: %s is a %s mount, want a bind mount of a file of this repository", s.Name, target, v.Type)
			}
			return v.Source
		}
	}
	t.Fatalf("%s mounts nothing at %s", s.Name, target)
	return ""
}

// env returns a service's environment as a lookup function.
func env(s types.ServiceConfig) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := s.Environment[k]
		if !ok || v == nil {
			return "", false
		}
		return *v, true
	}
}

// The demo names its four services with the images and builds the README
// describes, and everything it mounts or builds from is in the repository.
func TestComposeServices(t *testing.T) {
	p := demo(t)
	names := p.ServiceNames()
	sort.Strings(names)
	if diff := cmp.Diff([]string{"receiver", "redis", "registry", "regwebhook"}, names); diff != "" {
		t.Fatalf("services (-want +got):\n%s", diff)
	}
	type service struct{ Image, Build string }
	got := map[string]service{}
	for name, s := range p.Services {
		sv := service{Image: s.Image}
		if s.Build != nil {
			rel, err := filepath.Rel(root(t), s.Build.Context)
			if err != nil {
				t.Fatal(err)
			}
			sv.Build = filepath.Join(rel, s.Build.Dockerfile)
		}
		got[name] = sv
	}
	want := map[string]service{
		"registry":   {Image: "registry:3"},
		"redis":      {Image: "redis:7"},
		"regwebhook": {Image: "regwebhook:demo", Build: "Dockerfile"},
		"receiver":   {Build: "examples/receiver/Dockerfile"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("images and builds (-want +got):\n%s", diff)
	}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if !strings.HasPrefix(v.Source, root(t)+string(filepath.Separator)) {
				t.Errorf("%s mounts %s, outside the repository", name, v.Source)
			}
			if st, err := os.Stat(v.Source); err != nil || st.IsDir() {
				t.Errorf("%s mounts %s, which is not a file of the repository: %v", name, v.Source, err)
			}
		}
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s builds from %v", name, err)
			}
		}
	}

	redis := p.Services["redis"]
	for _, flag := range [][]string{{"--appendonly", "yes"}, {"--maxmemory-policy", "noeviction"}} {
		if i := slices.Index(redis.Command, flag[0]); i < 0 || i+1 >= len(redis.Command) || redis.Command[i+1] != flag[1] {
			t.Errorf("redis command %q lacks %s %s", redis.Command, flag[0], flag[1])
		}
	}
	if i := slices.IndexFunc(redis.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == "/data" }); i < 0 || redis.Volumes[i].Type != types.VolumeTypeVolume {
		t.Errorf("redis keeps /data in no named volume: its AOF would go with the container")
	}
}

// The registry's notifications reach regwebhook over the compose network
// with the token regwebhook's receiver takes; regwebhook's config passes
// `config check` with the environment compose gives it, its store is the
// redis service, and its webhook goes to the receiver service, signed with
// the secret the receiver checks.
func TestComposeWiring(t *testing.T) {
	p := demo(t)
	reg, rw, rc := p.Services["registry"], p.Services["regwebhook"], p.Services["receiver"]

	f, err := os.Open(mount(t, reg, "/etc/distribution/config.yml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	regCfg, err := configuration.Parse(f)
	if err != nil {
		t.Fatalf("the registry's config: %v", err)
	}
	if n := len(regCfg.Notifications.Endpoints); n != 1 {
		t.Fatalf("the registry's config has %d notification endpoints, want 1", n)
	}
	ep := regCfg.Notifications.Endpoints[0]
	if enabled, _ := regCfg.Storage["delete"]["enabled"].(bool); !enabled {
		t.Error("the registry's config does not enable deletes: no delete webhooks")
	}

	cfg, err := config.Load(mount(t, rw, "/etc/regwebhook/config.yml"), env(rw))
	if err != nil {
		t.Fatalf("regwebhook's config with the environment compose gives it: %v", err)
	}

	u, err := url.Parse(ep.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, rwPort, _ := net.SplitHostPort(cfg.HTTP.Addr)
	type wiring struct {
		NotifyHost, NotifyPort, NotifyPath string
		NotifyAuth                         []string
		RedisHost                          string
		HookHost, HookPort                 string
		HookSecret                         string
	}
	got := wiring{
		NotifyHost: u.Hostname(), NotifyPort: u.Port(), NotifyPath: u.Path,
		NotifyAuth: ep.Headers.Values("Authorization"),
	}
	redisHost, _, _ := net.SplitHostPort(cfg.Store.Redis.Addr)
	got.RedisHost = redisHost
	if len(cfg.Webhooks) > 0 {
		hu, err := url.Parse(cfg.Webhooks[0].URI)
		if err != nil {
			t.Fatal(err)
		}
		got.HookHost, got.HookPort, got.HookSecret = hu.Hostname(), hu.Port(), cfg.Webhooks[0].Secret
	}
	secret, _ := env(rc)("WEBHOOK_SECRET")
	want := wiring{
		NotifyHost: "regwebhook", NotifyPort: rwPort, NotifyPath: "/v1/notifications",
		NotifyAuth: []string{"Bearer " + cfg.Receiver.Token},
		RedisHost:  "redis",
		HookHost:   "receiver", HookPort: receiverPort(t),
		HookSecret: secret,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("registry → regwebhook → receiver (-want +got):\n%s", diff)
	}
	if cfg.Receiver.Token == "" || cfg.Admin.Token == "" || secret == "" {
		t.Errorf("receiver token %q, admin token %q, webhook secret %q: the demo sets all three", cfg.Receiver.Token, cfg.Admin.Token, secret)
	}
	if cfg.Store.Driver != "redis" {
		t.Errorf("store.driver %s, want redis", cfg.Store.Driver)
	}
	if rw.DependsOn["redis"].Condition != types.ServiceConditionHealthy {
		t.Error("regwebhook does not wait for redis to be healthy")
	}
	if cli, _ := env(rw)("REGWEBHOOK_TOKEN"); cli != cfg.Admin.Token {
		t.Error("REGWEBHOOK_TOKEN in the regwebhook container is not the admin token: the CLI there cannot call the API")
	}
}

// receiverPort is the port the receiver's image listens on (its EXPOSE).
func receiverPort(t *testing.T) string {
	t.Helper()
	for _, in := range stage(parseDockerfile(t, filepath.Join(root(t), "examples/receiver/Dockerfile")), -1) {
		if in.Cmd == "EXPOSE" {
			return in.Args
		}
	}
	t.Fatal("examples/receiver/Dockerfile exposes no port")
	return ""
}

// Without .env, compose refuses to start and says what to do, rather than
// running the demo with empty tokens.
func TestComposeWithoutEnv(t *testing.T) {
	_, err := loadCompose(t)
	if err == nil || !strings.Contains(err.Error(), "cp .env.example .env") {
		t.Errorf("docker-compose.yml without .env: %v, want an error saying cp .env.example .env", err)
	}
}

// The receiver's image builds as its Dockerfile says: the files it copies,
// alone in a folder, and its RUN line, with no module proxy (the standard
// library only).
func TestReceiverBuildsAlone(t *testing.T) {
	dir := filepath.Join(root(t), "examples/receiver")
	build := stageNamed(t, parseDockerfile(t, filepath.Join(dir, "Dockerfile")), "build")
	work, out := t.TempDir(), filepath.Join(t.TempDir(), "receiver")
	var run []string
	for _, in := range build {
		switch in.Cmd {
		case "COPY":
			w := words(in.Args)
			for _, src := range w[:len(w)-1] {
				b, err := os.ReadFile(filepath.Join(dir, src))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(work, filepath.Base(src)), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		case "RUN":
			run = append(run, strings.ReplaceAll(in.Args, "/out/receiver", out))
		}
	}
	if len(run) != 1 {
		t.Fatalf("the receiver's build stage has %d RUN lines, want 1", len(run))
	}
	cmd := exec.Command("sh", "-c", run[0])
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", run[0], err, b)
	}
	if _, err := os.Stat(out); err != nil {
		t.Errorf("the build made no binary: %v", err)
	}
}
