// Package cdc captures committed row changes from Postgres through a
// logical replication slot (pgoutput, protocol version 1) and hands them,
// one committed transaction at a time and in commit order, to a Sink.
//
// # Large transactions
//
// pgoutput (protocol version 1) sends a transaction once it committed, but
// the Reader does not wait for its Commit message to hand it over: it
// hands a large transaction over in pieces as the changes arrive (see
// Transaction), so what the Reader holds does not grow with the size of a
// transaction. Every piece carries the transaction's XID, commit time and
// commit LSN (from its Begin message), and positions count across the
// whole transaction; only the last piece carries the end LSN, so only then
// can the transaction be acknowledged. A reconnection in the middle of a
// transaction makes the server send it again from its start: the Reader
// drops the changes it already handed over in this process, so the Sink
// sees each position once.
//
// # The acknowledgement invariant
//
// The slot is confirmed only up to what the consumer has settled: every
// standby status update the Reader sends reports as written, flushed and
// applied the highest LSN passed to Reader.Ack (a Transaction.EndLSN), never
// merely the highest LSN received. The only exception is an idle stream:
// when every transaction received has been acknowledged and nothing is half
// received, the position the server reports in a keepalive may be confirmed,
// because every transaction committed before it was already delivered. So
// the slot's confirmed_flush_lsn never passes a change the consumer has not
// settled, and after any crash or reconnection the stream resumes from at
// most the last acknowledged position: no committed change is skipped,
// changes after the last acknowledgement may come again, and the Reader
// drops transactions at or before the position it knows to be settled.
//
// # Knowing the slot
//
// A Reader keeps a SlotRecord of the slot it owns (ReaderConfig.Records: the
// relay keeps it in the state store; without it, in memory): the server's
// system identifier, the database, and a position that is never behind what
// it confirmed, because a position is recorded before any standby status or
// Reader.ConfirmSettled reports it. Every session judges the slot against
// the record before streaming. A slot that is missing, confirmed beyond the
// record (re-created or advanced by someone else), invalidated, of another
// server or database, or whose publication is gone cannot go on from where
// the Reader left off: Run returns a *GapError (ErrGap) naming the slot, the
// recorded position and the way out, and never creates a slot over a
// recorded one. Without a record the slot is created, or adopted if present.
//
// # Values
//
// Column values arrive in text format and are decoded into JSON-faithful Go
// values as described on Change. timestamptz becomes RFC 3339 in UTC with a
// Z; a timestamp without time zone is taken as UTC and gets a Z too.
// 'infinity', '-infinity' and BC dates and timestamps stay as Postgres
// wrote them. Types without a natural JSON form (interval, inet, time,
// money, ranges, composites, ...) are their Postgres text. Arrays of any
// type pgx knows, and of user-defined types, become []any.
package cdc
