// Package outbox reads an outbox table: rows an application inserts, in its
// own transactions, to have walhook deliver them as events.
//
// # Claiming, settling, deleting
//
// A Poller claims up to a batch of rows at a time in one transaction,
// `ORDER BY id FOR UPDATE SKIP LOCKED`, hands them to its Sink and keeps
// the transaction open. Only when the Sink reports the batch settled (every
// delivery accepted or durably written to the retry store) does it delete
// the rows and commit that same transaction. A crash at any moment before
// the commit rolls the claim back: the rows are unlocked and claimed again,
// so nothing committed is lost, and a row claimed again yields the same
// event ids. Rows of transactions that roll back never become visible, so
// they are never delivered. Several pollers (walhook instances) may share a
// table: SKIP LOCKED gives each row to one of them; only a crash makes a
// row go out twice.
//
// Pollers wake on NOTIFY (channel Channel, sent by the statement trigger
// TableSQL installs, or by the application with pg_notify) and poll at an
// interval as a fallback when notifications are lost.
//
// # Captured changes
//
// The trigger fallback (TriggersSQL) writes row changes of ordinary tables
// into the outbox as rows of type ChangeType. The Poller decodes them into
// cdc.Change values with the same value decoding as the replication reader,
// so rules see the same rows they would see through a slot.
package outbox
