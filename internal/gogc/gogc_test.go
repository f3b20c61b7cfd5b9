package gogc

import (
	"runtime/debug"
	"testing"
)

func TestSetLeavesTheEnvironmentsGOGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	Set(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != Server {
		t.Errorf("without GOGC in the environment: GOGC %d, want %d", got, Server)
	}
	// The runtime read the environment's GOGC at start; Set must not undo it.
	debug.SetGCPercent(150)
	Set(func(k string) string {
		if k == "GOGC" {
			return "150"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 150 {
		t.Errorf("with GOGC=150 in the environment: GOGC %d, want 150", got)
	}
}
