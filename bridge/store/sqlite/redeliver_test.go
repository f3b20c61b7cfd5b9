package sqlite_test

import (
	"testing"

	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/storetest"
)

func TestRedeliveriesConformance(t *testing.T) {
	storetest.RunRedeliveries(t, func(t *testing.T) store.Store {
		return open(t, t.TempDir())
	})
}
