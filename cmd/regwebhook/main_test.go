package main

import (
	"os"
	"testing"
)

// TestMain lets a test run this binary as the regwebhook command: with
// REGWEBHOOK_TEST_MAIN=1 in its environment, the test binary is regwebhook.
// Tests that kill the process use this instead of building it.
func TestMain(m *testing.M) {
	if os.Getenv("REGWEBHOOK_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
