package event_test

import (
	"errors"
	"testing"

	"github.com/walhook/walhook/internal/event"
)

func TestBodiesRenderEachShapeOnce(t *testing.T) {
	ev := &event.Event{ID: "evt_1", Type: "contact.created"}
	calls := map[string]int{}
	render := func(shape string, err error) func(*event.Event) ([]byte, error) {
		return func(e *event.Event) ([]byte, error) {
			calls[shape]++
			return []byte(shape + ":" + e.ID), err
		}
	}
	b := event.NewBodies(ev)
	first, _ := b.Render("", render("default", nil))
	for i := 0; i < 100; i++ {
		body, err := b.Render("", render("default", nil))
		if err != nil || &body[0] != &first[0] {
			t.Fatalf("default body rendered again or copied (%v)", err)
		}
	}
	custom, _ := b.Render("cfg:legacy", render("legacy", nil))
	if string(custom) != "legacy:evt_1" || string(first) != "default:evt_1" {
		t.Fatalf("bodies %q %q", first, custom)
	}
	boom := errors.New("boom")
	for i := 0; i < 2; i++ {
		if _, err := b.Render("cfg:broken", render("broken", boom)); err != boom {
			t.Fatalf("error %v, want boom", err)
		}
	}
	if calls["default"] != 1 || calls["legacy"] != 1 || calls["broken"] != 1 {
		t.Fatalf("render calls %v, want one per shape", calls)
	}
}

// TestBodiesResetStartsOver: after Reset to another event, every shape is
// rendered afresh for it, and the bodies of the first event are kept.
func TestBodiesResetStartsOver(t *testing.T) {
	render := func(e *event.Event) ([]byte, error) { return []byte("default:" + e.ID), nil }
	var b event.Bodies
	b.Reset(&event.Event{ID: "evt_1"})
	first, _ := b.Render("", render)
	b.Reset(&event.Event{ID: "evt_2"})
	second, _ := b.Render("", render)
	if string(first) != "default:evt_1" || string(second) != "default:evt_2" {
		t.Fatalf("bodies %q %q after Reset", first, second)
	}
}
