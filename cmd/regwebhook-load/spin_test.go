package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

// spin takes about its share of one core, never a whole one, and stops
// with its context.
func TestSpinTakesItsShareOfACore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	cpu0, wall0 := selfCPU(), time.Now()
	spin(ctx, 0.2)
	wall, cpu := time.Since(wall0), selfCPU()-cpu0
	if wall > 2*time.Second {
		t.Errorf("spin ran for %v, its context ended after 500ms", wall)
	}
	if cpu <= 0 || cpu > wall/2 {
		t.Errorf("spin with a share of 0.2 took %v of CPU in %v, want some and at most half", cpu, wall)
	}
}

// A share outside (0, 1] and a negative duration are usage errors; a
// duration ends the command.
func TestSpinCommand(t *testing.T) {
	for _, args := range [][]string{{"--share", "0"}, {"--share", "1.5"}, {"--share", "-0.1"}, {"--duration", "-1s"}} {
		cmd := newSpinCmd()
		cmd.SetArgs(args)
		if err := cmd.ExecuteContext(context.Background()); !errors.Is(err, errUsage) {
			t.Errorf("spin %v: error %v, want a usage error", args, err)
		}
	}
	cmd := newSpinCmd()
	cmd.SetArgs([]string{"--share", "0.1", "--duration", "100ms"})
	start := time.Now()
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("spin --duration 100ms: %v", err)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("spin --duration 100ms returned after %v", took)
	}
}
