package cdc_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// TestSlotHandover: a reader that stops records and confirms what it
// settled and calls Released once its session has ended, and a standby
// told to Retry takes the slot at once although its own retry of a slot in
// use is an hour away, and reads nothing again; the reader that let go
// then gets ErrSlotInUse from ConfirmSettled at once instead of waiting
// for the slot.
func TestSlotHandover(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	cfg := recordedConfig(t, db, newRecords())
	cfg.RecordInterval = time.Hour // only the stop records the position
	var second atomic.Pointer[running]
	released := make(chan struct{}, 1)
	firstCfg := cfg
	firstCfg.Released = func(context.Context) {
		if s := second.Load(); s != nil {
			s.reader.Retry()
		}
		released <- struct{}{}
	}
	first := start(t, firstCfg, true)
	testkit.Await(t, "the first reader streaming", first.signals.Streaming)
	standbyCfg := cfg
	standbyCfg.SlotInUseRetry = time.Hour
	second.Store(run(t, standbyCfg, true))
	testkit.AwaitMatch(t, "the standby to find the slot in use", second.Load().signals.Interrupted, func(err string) bool {
		return strings.Contains(err, "in use by pid")
	})

	insertContact(t, db, 1)
	first.sink.waitTransactions(t, 1)
	first.stop(t)
	testkit.Await(t, "the first reader to announce the release", released)
	testkit.Await(t, "the standby to stream", second.Load().signals.Streaming)
	insertContact(t, db, 2)
	if ids := contactIDs(second.Load().sink.waitTransactions(t, 1)); !equalIDs(ids, 2) {
		t.Fatalf("standby got contacts %v, want [2]: what the first settled was not confirmed when it let go", ids)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	beyond := currentLSN(t, db) + 1<<20 // never confirmed by the standby
	if err := first.reader.ConfirmSettled(ctx, beyond); !errors.Is(err, cdc.ErrSlotInUse) {
		t.Errorf("ConfirmSettled by the reader that let go: %v, want ErrSlotInUse", err)
	}
}

// TestSlotInUseRetriedWithoutBackoff: a standby tries a slot in use every
// SlotInUseRetry, not with the growing backoff of other errors (twelve
// tries with that take over four minutes), and never calls Released.
func TestSlotInUseRetriedWithoutBackoff(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	cfg := testConfig(t, db, "public.contacts")
	cfg.MaxBackoff = time.Hour
	first := start(t, cfg, true)
	testkit.Await(t, "the first reader streaming", first.signals.Streaming)
	standbyCfg := cfg
	standbyCfg.SlotInUseRetry = 50 * time.Millisecond
	var calls atomic.Int32
	standbyCfg.Released = func(context.Context) { calls.Add(1) }
	standby := run(t, standbyCfg, true)
	for range 12 {
		testkit.AwaitMatch(t, "the standby to find the slot in use", standby.signals.Interrupted, func(err string) bool {
			return strings.Contains(err, "in use by pid")
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("Released called %d times by a reader that never streamed", n)
	}
}
