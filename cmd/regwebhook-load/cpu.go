package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regwebhook/regwebhook/internal/rediscpu"
)

// On a machine the load command shares with what it measures, a system's
// rate says how fast it went, and its CPU time per envelope how much of the
// machine it took for that: the second is the steadier figure. Each system
// is counted as three parts: its process (regwebhook, or the floor), the
// Redis it stores in (none on the embedded store: SQLite is in the
// process), and this command itself (sending, and receiving the
// deliveries).

// cpuTimes is the CPU time used so far by each part; a part not measured is
// negative.
type cpuTimes struct {
	proc, redis, self time.Duration
}

// cpuMeter reads the parts' CPU times.
type cpuMeter struct {
	pid   int           // the measured process; 0: not measured
	redis *redis.Client // nil: not measured
}

func (c cpuMeter) read(ctx context.Context) cpuTimes {
	t := cpuTimes{proc: -1, redis: -1, self: selfCPU()}
	if c.pid > 0 {
		if d, err := procCPU(c.pid); err == nil {
			t.proc = d
		} else {
			fmt.Fprintln(os.Stderr, "regwebhook-load:", err)
		}
	}
	if c.redis != nil {
		if d, err := rediscpu.Used(ctx, c.redis); err == nil {
			t.redis = d
		} else {
			fmt.Fprintln(os.Stderr, "regwebhook-load:", err)
		}
	}
	return t
}

// since is what each part used from t0 to t; negative where either is.
func (t cpuTimes) since(t0 cpuTimes) cpuTimes {
	d := func(a, b time.Duration) time.Duration {
		if a < 0 || b < 0 {
			return -1
		}
		return a - b
	}
	return cpuTimes{proc: d(t.proc, t0.proc), redis: d(t.redis, t0.redis), self: d(t.self, t0.self)}
}

// redisCounts are what a Redis server has done so far, as INFO stats
// counts it: the commands it ran, those its scripts called included, and
// the reads it made of its clients' requests (a pipeline of commands is
// read at once): the work an envelope cost Redis, and in how many round
// trips. They count every client of that Redis, this command's INFO too.
type redisCounts struct {
	commands, reads int64
}

// readRedisCounts reads c's server's redisCounts.
func readRedisCounts(ctx context.Context, c *redis.Client) (redisCounts, error) {
	info, err := c.Info(ctx, "stats").Result()
	if err != nil {
		return redisCounts{}, fmt.Errorf("redis counts: %w", err)
	}
	var n redisCounts
	found := 0
	for _, line := range strings.Split(info, "\r\n") {
		name, value, _ := strings.Cut(line, ":")
		var field *int64
		switch name {
		case "total_commands_processed":
			field = &n.commands
		case "total_reads_processed":
			field = &n.reads
		default:
			continue
		}
		v, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return redisCounts{}, fmt.Errorf("redis counts: INFO stats %s %q: %w", name, value, err)
		}
		*field = v
		found++
	}
	if found != 2 {
		return redisCounts{}, fmt.Errorf("redis counts: INFO stats has no total_commands_processed or total_reads_processed (the Redis 7 the store needs has both)")
	}
	return n, nil
}

// countRedis reads c's redisCounts; ok is false when c is nil or could
// not be read (said on stderr, as the CPU times are: the run's other
// figures stand).
func countRedis(ctx context.Context, c *redis.Client) (n redisCounts, ok bool) {
	if c == nil {
		return n, false
	}
	n, err := readRedisCounts(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "regwebhook-load:", err)
		return n, false
	}
	return n, true
}

// since is what Redis did from n0 to n.
func (n redisCounts) since(n0 redisCounts) redisCounts {
	return redisCounts{commands: n.commands - n0.commands, reads: n.reads - n0.reads}
}

// clockTicks is the unit of /proc/<pid>/stat's times (USER_HZ), 100 on
// Linux.
const clockTicks = 100

// procCPU is a process's user and system CPU time, from /proc (Linux).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("CPU time of process %d: %w", pid, err)
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// after its closing parenthesis. utime and stime are fields 14 and 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("CPU time of process %d: short /proc stat %q", pid, s)
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("CPU time of process %d: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// selfCPU is this process's user and system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
