// Package rediscpu reads the CPU time a Redis server has used, for
// benchmarks that count Redis's share of an operation's cost.
package rediscpu

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Used is the user and system CPU time the server reports (INFO cpu): the
// work of every client, so nothing else should use that Redis while it is
// measured.
func Used(ctx context.Context, c *redis.Client) (time.Duration, error) {
	info, err := c.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, fmt.Errorf("redis CPU time: %w", err)
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		name, value, _ := strings.Cut(line, ":")
		if name == "used_cpu_sys" || name == "used_cpu_user" {
			s, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return 0, fmt.Errorf("redis CPU time: INFO cpu %s %q: %w", name, value, err)
			}
			total += s
		}
	}
	return time.Duration(total * float64(time.Second)), nil
}
