// Package redistest runs Redis for tests: the shared redis-server on
// 127.0.0.1:6379 under a key prefix of the test's own (never flushed: only
// the test's own keys are deleted when it ends), or a redis-server of the
// test's own, on a free port with a temporary directory, that the test may
// stop, freeze, kill and restart.
package redistest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SharedAddr is where scripts/test starts the shared redis-server.
const SharedAddr = "127.0.0.1:6379"

// AddrEnv names the variable that points the tests and benchmarks at
// another shared Redis than SharedAddr: one under valgrind, say, to count
// its instructions (docs/benchmarks.md, "How to reproduce").
const AddrEnv = "REGWEBHOOK_TEST_REDIS"

// SharedAddress returns $REGWEBHOOK_TEST_REDIS, or SharedAddr.
func SharedAddress() string {
	if a := os.Getenv(AddrEnv); a != "" {
		return a
	}
	return SharedAddr
}

// Shared returns the shared Redis's address and a prefix no other test
// uses ("regwebhook-test-<random>:"). When the test ends it deletes the keys
// under that prefix, and only those. It fails the test when the shared Redis
// does not answer.
func Shared(t testing.TB) (addr, prefix string) {
	t.Helper()
	addr = SharedAddress()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		t.Fatalf("redistest: the shared redis-server on %s does not answer (%v); run scripts/test, which starts it, or start redis-server there", addr, err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "regwebhook-test-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		defer c.Close()
		for _, pattern := range []string{"{" + name + "}:*", name + ":*"} {
			iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
			var keys []string
			for iter.Next(ctx) {
				keys = append(keys, iter.Val())
			}
			if err := iter.Err(); err != nil {
				t.Errorf("redistest: scan keys of %s: %v", pattern, err)
				return
			}
			for len(keys) > 0 {
				n := min(len(keys), 1000)
				if err := c.Del(ctx, keys[:n]...).Err(); err != nil {
					t.Errorf("redistest: delete keys of %s: %v", pattern, err)
					return
				}
				keys = keys[n:]
			}
		}
	})
	return addr, name + ":"
}

// Binary returns the path of redis-server, failing the test with what to
// install when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server is not on PATH: install it (Debian: apt-get install -y redis-server) or run scripts/test")
	}
	return p
}

// Server is a redis-server of the test's own. Its methods fail the test on
// errors; they are safe to call from the test's goroutine only.
type Server struct {
	t    testing.TB
	Addr string      // 127.0.0.1:port
	Dir  string      // its working directory: AOF and RDB files, log
	TLS  *tls.Config // client config when it serves TLS only

	args   []string
	cmd    *exec.Cmd
	exited chan struct{}
	frozen bool
}

// Start runs redis-server on a free port of 127.0.0.1 with no persistence
// unless args set it ("--appendonly", "yes"), and waits until it answers.
// It is killed when the test ends.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	return start(t, nil, nil, args)
}

// StartTLS runs redis-server serving only TLS, with the server certificate
// of files, and waits until it answers. Clients need not present a
// certificate.
func StartTLS(t testing.TB, files TLSFiles, args ...string) *Server {
	t.Helper()
	tlsArgs := []string{"--tls-cert-file", files.Cert, "--tls-key-file", files.Key, "--tls-ca-cert-file", files.CA,
		"--tls-auth-clients", "no"}
	return start(t, tlsArgs, &tls.Config{RootCAs: files.Pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}, args)
}

func start(t testing.TB, tlsArgs []string, clientTLS *tls.Config, extra []string) *Server {
	t.Helper()
	bin := Binary(t)
	port := freePort(t)
	dir := t.TempDir()
	args := []string{"--bind", "127.0.0.1", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"),
		"--save", "", "--appendonly", "no", "--daemonize", "no"}
	if tlsArgs != nil {
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(port))
		args = append(args, tlsArgs...)
	} else {
		args = append(args, "--port", strconv.Itoa(port))
	}
	s := &Server{t: t, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir, TLS: clientTLS,
		args: append(append([]string{bin}, args...), extra...)}
	t.Cleanup(func() {
		if s.cmd != nil && s.cmd.ProcessState == nil {
			if s.frozen {
				s.cmd.Process.Signal(syscall.SIGCONT)
			}
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
	s.run()
	return s
}

// run starts the process and waits until it answers PING.
func (s *Server) run() {
	s.t.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	s.cmd.Dir = s.Dir
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start %v: %v", s.args, err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		cmd.Wait()
		close(exited)
	}(s.cmd, s.exited)
	c := redis.NewClient(&redis.Options{Addr: s.Addr, TLSConfig: s.TLS, DialTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		select {
		case <-s.exited:
			s.t.Fatalf("redistest: redis-server exited at start: %s\n%s", s.cmd.ProcessState, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redistest: redis-server on %s does not answer: %v\n%s", s.Addr, err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log returns what redis-server wrote to its log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	return string(b)
}

// Kill ends redis-server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	s.t.Helper()
	s.signal(syscall.SIGKILL)
	<-s.exited
	s.frozen = false
}

// Restart starts redis-server again, on the same port and directory (so it
// loads what it persisted), and waits until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	select {
	case <-s.exited:
	default:
		s.t.Fatalf("redistest: restart of a redis-server that still runs")
	}
	s.run()
}

// Freeze stops redis-server with SIGSTOP: it keeps its connections and
// takes new ones, but answers nothing, as a hung server does.
func (s *Server) Freeze() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
	s.frozen = true
}

// Thaw resumes a frozen redis-server with SIGCONT.
func (s *Server) Thaw() {
	s.t.Helper()
	s.signal(syscall.SIGCONT)
	s.frozen = false
}

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: signal %v to redis-server: %v", sig, err)
	}
}

// freePort returns a port of 127.0.0.1 that no one listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TLSFiles are the PEM files of a CA and of a server certificate it signed
// for 127.0.0.1 and localhost.
type TLSFiles struct {
	CA, Cert, Key string
	Pool          *x509.CertPool // holds the CA
}

// NewTLS makes a CA and a server certificate in a temporary directory.
func NewTLS(t testing.TB) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redistest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server-key.pem"),
		Pool: x509.NewCertPool()}
	f.Pool.AddCert(ca)
	for path, block := range map[string]*pem.Block{
		f.CA:   {Type: "CERTIFICATE", Bytes: caDER},
		f.Cert: {Type: "CERTIFICATE", Bytes: der},
		f.Key:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// Keys lists the keys of a Redis that match pattern, for tests that check
// the key layout.
func Keys(t testing.TB, addr, pattern string) []string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	var out []string
	iter := c.Scan(context.Background(), 0, pattern, 1000).Iterator()
	for iter.Next(context.Background()) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("redistest: scan %s: %v", pattern, err)
	}
	return out
}
