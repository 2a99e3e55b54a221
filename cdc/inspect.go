package cdc

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SlotStatus is a replication slot as pg_replication_slots shows it.
type SlotStatus struct {
	Name   string
	Exists bool
	Active bool
	// ActivePID is the walsender's pid while a reader streams (0 if none).
	ActivePID int32
	// ConfirmedLSN is the position the reader has confirmed ("" if none).
	ConfirmedLSN string
	// LagBytes is the WAL written since ConfirmedLSN: what the slot pins.
	LagBytes int64
	// WALStatus is pg_replication_slots.wal_status ("reserved", "lost"...).
	WALStatus string
}

// PublicationStatus is a publication and how many tables it publishes.
type PublicationStatus struct {
	Name   string
	Exists bool
	Tables int
}

// Inspect reads the slot and the publication of the database at url,
// changing nothing.
func Inspect(ctx context.Context, url, slot, publication string) (SlotStatus, PublicationStatus, error) {
	s, p := SlotStatus{Name: slot}, PublicationStatus{Name: publication}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return s, p, fmt.Errorf("connecting to the source database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if s, err = readSlotStatus(ctx, conn, slot); err != nil {
		return s, p, err
	}
	p, err = readPublicationStatus(ctx, conn, publication)
	return s, p, err
}

func readSlotStatus(ctx context.Context, conn *pgx.Conn, slot string) (SlotStatus, error) {
	s := SlotStatus{Name: slot}
	var pid *int32
	var confirmed, walStatus *string
	var lag *int64
	err := conn.QueryRow(ctx, `SELECT active, active_pid, confirmed_flush_lsn::text,
		pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, wal_status
		FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&s.Active, &pid, &confirmed, &lag, &walStatus)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return s, nil
	case err != nil:
		return s, fmt.Errorf("reading replication slot %s: %w", slot, err)
	}
	s.Exists = true
	if pid != nil {
		s.ActivePID = *pid
	}
	if confirmed != nil {
		s.ConfirmedLSN = *confirmed
	}
	if lag != nil {
		s.LagBytes = *lag
	}
	if walStatus != nil {
		s.WALStatus = *walStatus
	}
	return s, nil
}

func readPublicationStatus(ctx context.Context, conn *pgx.Conn, publication string) (PublicationStatus, error) {
	p := PublicationStatus{Name: publication}
	err := conn.QueryRow(ctx, `SELECT count(pt.tablename)::int FROM pg_publication p
		LEFT JOIN pg_publication_tables pt ON pt.pubname = p.pubname WHERE p.pubname = $1 GROUP BY p.pubname`,
		publication).Scan(&p.Tables)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return p, nil
	case err != nil:
		return p, fmt.Errorf("reading publication %s: %w", publication, err)
	}
	p.Exists = true
	return p, nil
}
