package store

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// Notifications are the callbacks of Listen; a nil one is not listened for.
type Notifications struct {
	// Webhooks is called with the new WebhooksVersion each time a webhook
	// change commits, from any process.
	Webhooks func(version int64)
	// SlotReleased is called with a slot's name each time an instance
	// announces (NotifySlotReleased) that it let go of that slot.
	SlotReleased func(slot string)
}

// SlotsChannel is the LISTEN/NOTIFY channel of NotifySlotReleased:
// "<schema>_slots", cut to Postgres' 63-byte identifier limit.
func (s *Store) SlotsChannel() string { return s.slots }

// NotifySlotReleased tells every instance listening (Listen) that this
// one closed its replication connection to slot, so that a standby takes
// the slot over at once (docs/scaling.md, "Rolling restarts").
func (s *Store) NotifySlotReleased(ctx context.Context, slot string) error {
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, s.slots, slot); err != nil {
		return fmt.Errorf("announcing that slot %s is free: %w", slot, err)
	}
	return nil
}

// Listen calls the callbacks of n as their notifications arrive, until ctx
// ends (then it returns nil) or the connection fails. It holds one
// connection of the pool for its own use (LISTEN on WebhooksChannel and
// SlotsChannel) and closes it at the end. ready, if not nil, is called once
// listening has started; notifications sent before that are not reported,
// so call WebhooksVersion after ready to catch up.
func (s *Store) Listen(ctx context.Context, ready func(), n Notifications) error {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("listening to the state database: acquiring a connection: %w", err)
	}
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	for _, c := range []struct {
		name string
		on   bool
	}{{s.channel, n.Webhooks != nil}, {s.slots, n.SlotReleased != nil}} {
		if !c.on {
			continue
		}
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{c.name}.Sanitize()); err != nil {
			return fmt.Errorf("listening on %q: %w", c.name, err)
		}
	}
	if ready != nil {
		ready()
	}
	for {
		msg, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("listening to the state database: %w", err)
		}
		switch msg.Channel {
		case s.channel:
			v, err := strconv.ParseInt(msg.Payload, 10, 64)
			if err != nil {
				return fmt.Errorf("watching webhooks: bad notification payload %q: %w", msg.Payload, err)
			}
			n.Webhooks(v)
		case s.slots:
			n.SlotReleased(msg.Payload)
		}
	}
}
