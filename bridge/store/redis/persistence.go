package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/regwebhook/regwebhook/bridge/store"
)

// persistence reads INFO persistence and INFO memory and says, one warning a
// problem, what may be lost: with AOF off a restart or crash of Redis loses
// what was written since its last snapshot; with a maxmemory-policy other
// than noeviction a full Redis evicts keys (queued jobs among them) instead
// of refusing writes. A Redis that will not answer INFO (a managed one that
// renames it) is a warning too: nothing could be checked.
func (s *Store) persistence(ctx context.Context) ([]string, error) {
	var warnings []string
	p, err := s.info(ctx, "persistence")
	if err != nil {
		return nil, err
	}
	m, err := s.info(ctx, "memory")
	if err != nil {
		return nil, err
	}
	if p == nil || m == nil {
		return []string{fmt.Sprintf("redis at %s does not answer INFO: its persistence settings could not be checked", s.addr)}, nil
	}
	if aof := p["aof_enabled"]; aof != "1" {
		warnings = append(warnings, fmt.Sprintf("redis at %s has AOF off (appendonly no): a restart or crash of Redis loses "+
			"the jobs written since its last snapshot, though the registry got 2xx for them; set appendonly yes", s.addr))
	}
	if policy := m["maxmemory_policy"]; policy != "noeviction" {
		warnings = append(warnings, fmt.Sprintf("redis at %s has maxmemory-policy %s, not noeviction: when its memory is full "+
			"it evicts keys, queued jobs among them; set maxmemory-policy noeviction", s.addr, policy))
	}
	return warnings, nil
}

// info returns the fields of an INFO section; nil when Redis refuses INFO
// with an error about the command (unknown or not permitted) rather than
// being unreachable.
func (s *Store) info(ctx context.Context, section string) (map[string]string, error) {
	text, err := s.c.Info(ctx, section).Result()
	if err != nil {
		if err := classify(err); errors.Is(err, store.ErrUnavailable) && !strings.Contains(err.Error(), "NOPERM") {
			return nil, fmt.Errorf("read INFO %s: %w", section, err)
		}
		return nil, nil
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok && !strings.HasPrefix(k, "#") {
			fields[k] = v
		}
	}
	return fields, nil
}
