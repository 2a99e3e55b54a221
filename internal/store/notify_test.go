package store

import (
	"context"
	"testing"
	"time"
)

// TestListen: on one connection, Listen gets an instance's
// NotifySlotReleased (its slot's name) and a webhook change made by
// another process's store (the new WebhooksVersion), and returns nil once
// its ctx ends.
func TestListen(t *testing.T) {
	t.Parallel()
	s, db := setup(t)
	other, err := Open(ctx(t), db.Pool, oddSchema)
	if err != nil {
		t.Fatal(err)
	}
	if s.SlotsChannel() != oddSchema+"_slots" {
		t.Errorf("SlotsChannel = %q", s.SlotsChannel())
	}
	wctx, cancel := context.WithCancel(ctx(t))
	ready := make(chan struct{})
	slots, versions := make(chan string, 10), make(chan int64, 10)
	done := make(chan error, 1)
	go func() {
		done <- s.Listen(wctx, func() { close(ready) }, Notifications{
			Webhooks:     func(v int64) { versions <- v },
			SlotReleased: func(slot string) { slots <- slot },
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Listen: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("listen not ready")
	}
	if err := other.NotifySlotReleased(ctx(t), "walhook_a"); err != nil {
		t.Fatal(err)
	}
	select {
	case slot := <-slots:
		if slot != "walhook_a" {
			t.Errorf("released slot %q, want walhook_a", slot)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no notification of the released slot")
	}
	if _, err := other.CreateWebhook(ctx(t), Webhook{URL: "https://example.com"}); err != nil {
		t.Fatal(err)
	}
	want, err := s.WebhooksVersion(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-versions:
		if v != want {
			t.Errorf("notified version %d, want %d", v, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no notification of the webhook change")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Listen after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Listen did not return after cancel")
	}
}
