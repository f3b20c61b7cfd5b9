package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/regwebhook/regwebhook/bridge/deliver"
	"github.com/regwebhook/regwebhook/bridge/rule"
	"github.com/regwebhook/regwebhook/bridge/store"
	"github.com/regwebhook/regwebhook/bridge/store/redis"
	"github.com/regwebhook/regwebhook/bridge/store/redis/redistest"
	"github.com/regwebhook/regwebhook/bridge/store/storetest"
	"github.com/regwebhook/regwebhook/internal/hooktest"
)

// A dispatcher of one worker holds 32 acks waiting to commit at most. On
// Redis acks wait for others to commit with; when all 32 wait, the
// dispatcher has them committed at once rather than stop delivering until
// their wait is out (here an hour), and when it stops, the acks still
// waiting commit as it returns. Both with and without the inbox.
func TestFewWorkersDeliverWhileAcksWaitForOthers(t *testing.T) {
	for _, inbox := range []bool{false, true} {
		t.Run(fmt.Sprintf("inbox=%v", inbox), func(t *testing.T) {
			ctx := context.Background()
			addr, prefix := redistest.Shared(t)
			s := open(t, redis.Options{Addr: addr, Prefix: prefix, Inbox: inbox, AckLinger: time.Hour})
			hook := hooktest.New(t)
			w := &rule.Webhook{ID: "w", Name: "w", URI: hook.URL()}
			w.Defaults()
			set, err := rule.NewSet([]*rule.Webhook{w})
			if err != nil {
				t.Fatal(err)
			}
			const jobs = 100 // three times the acks that may wait, and some
			now := time.Now()
			err = s.Ingest(ctx, func(tx store.Tx) error {
				for i := range jobs {
					id := fmt.Sprintf("job-%03d", i)
					err := tx.Enqueue(ctx, store.Job{ID: id, WebhookID: "w", EventID: "e-" + id, Action: "push",
						Payload: `{"id":"` + id + `"}`, ContentType: "application/json", Created: now, Due: now})
					if err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("enqueue: %v", err)
			}
			d := deliver.New(deliver.Params{
				Queue: s, Hooks: func() *rule.Set { return set },
				Sender:  deliver.NewSender(deliver.SenderParams{Version: "test", Timeout: 10 * time.Second}),
				Workers: 1, Lease: 2 * time.Hour, ShutdownGrace: time.Minute, // the last request ends
			})
			ran := make(chan error, 1)
			go func() { ran <- d.Run(ctx) }()
			hook.WaitFor(t, jobs, 60*time.Second)

			closed := make(chan error, 1)
			go func() { closed <- d.Close() }()
			select {
			case <-closed:
			case <-time.After(60 * time.Second):
				t.Fatal("the dispatcher did not stop: its last acks wait on")
			}
			if err := <-ran; err != nil {
				t.Fatalf("Run: %v", err)
			}
			depth, err := s.Depth(ctx, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if depth != (store.Depth{}) {
				t.Errorf("depth after every job was delivered and the dispatcher stopped: %+v, want every job acked", depth)
			}
			h, err := s.History(ctx, "w", 0)
			if err != nil || len(h) != storetest.Limits().History {
				t.Errorf("history: %d entries, %v; want the newest %d", len(h), err, storetest.Limits().History)
			}
		})
	}
}
