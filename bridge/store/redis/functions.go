package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// script is one of the store's Lua scripts: the body of a function of the
// store's Redis function library (see library). The body sees KEYS and
// ARGV as an EVAL script does, and lib's helpers.
type script struct {
	name string
	body string
}

func newScript(name, body string) *script { return &script{name: name, body: body} }

// library is the store's scripts as one Redis function library (FUNCTION
// LOAD, Redis 7.0), loaded into Redis once rather than sent with each call.
// lib, the helpers every script shares, then runs once, when the library
// loads: run as the head of an EVAL script it made some 25 closures on
// every call (a script that does nothing cost Redis 2.4 µs a call so, 0.75
// µs as a function).
//
// The library's name and its functions' names carry a hash of its code, so
// that processes of different versions on one Redis (a rolling upgrade)
// each call their own.
type library struct {
	name  string // regwebhook_<hash>
	code  string
	names map[*script]string // rw_<hash>_<script name>
}

func newLibrary(scripts ...*script) *library {
	h := sha1.New()
	h.Write([]byte(lib))
	for _, s := range scripts {
		fmt.Fprintf(h, "\x00%s\x00%s", s.name, s.body)
	}
	version := hex.EncodeToString(h.Sum(nil))[:12]
	l := &library{name: "regwebhook_" + version, names: map[*script]string{}}
	var b strings.Builder
	fmt.Fprintf(&b, "#!lua name=%s\n%s\n", l.name, lib)
	for _, s := range scripts {
		name := "rw_" + version + "_" + s.name
		l.names[s] = name
		// P and k are lib's: the prefix and the fixed keys of this call.
		fmt.Fprintf(&b, "redis.register_function('%s', function(KEYS, ARGV)\nP, k = ARGV[1], {}\n%s\nend)\n", name, s.body)
	}
	l.code = b.String()
	return l
}

// fn returns the name of script's function.
func (l *library) fn(s *script) string {
	name, ok := l.names[s]
	if !ok {
		panic("redis store: script " + s.name + " is not in the function library")
	}
	return name
}

// functions is the library of every script of the store.
var functions = newLibrary(readScript, commitScript, leaseScript, ackScript, failScript, releaseScript,
	maintainScript, depthScript, recordScript, deadLettersScript, createWebhookScript, updateWebhookScript,
	deleteWebhookScript, purgeJobsScript, announceScript, purgeScript, redeliverScript, redeliverDeadScript,
	takeScript, inackScript, inholdScript, reclaimScript)

// notLoaded reports whether err is Redis's answer to a call of a function
// it does not have: a Redis that restarted without persistence, or whose
// functions were flushed, or that has not met this version yet.
func notLoaded(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "ERR Function not found")
}

// load loads the library into Redis, replacing one of the same name (the
// same code: its name is its hash).
func (s *Store) load(ctx context.Context) error {
	err := s.c.FunctionLoadReplace(ctx, functions.code).Err()
	switch {
	case err == nil:
		return nil
	case strings.Contains(err.Error(), "unknown command"):
		return fmt.Errorf("load the store's Redis functions: %w (FUNCTION needs Redis 7.0 or later)", err)
	}
	return fmt.Errorf("load the store's Redis functions: %w", classify(err))
}

// call runs script through c (the client or a pipeline) with the prefix as
// ARGV[1].
func (s *Store) call(ctx context.Context, c redis.Cmdable, sc *script, keys []string, args ...any) *redis.Cmd {
	return c.FCall(ctx, functions.fn(sc), keys, append([]any{s.prefix}, args...)...)
}

// run runs script, loading the library first when Redis does not have it.
func (s *Store) run(ctx context.Context, sc *script, keys []string, args ...any) *redis.Cmd {
	cmd := s.call(ctx, s.c, sc, keys, args...)
	if notLoaded(cmd.Err()) {
		if err := s.load(ctx); err != nil {
			cmd.SetErr(err)
			return cmd
		}
		cmd = s.call(ctx, s.c, sc, keys, args...)
	}
	return cmd
}
