// Package backfill turns the rows already in a table into events (op
// "read"), interleaved with the live stream so that no row's events arrive
// out of order. docs/operations.md describes it for users.
//
// # The watermark algorithm (DBLog, as in Debezium's incremental snapshots)
//
// The Runner reads a table in primary key chunks. For each chunk it
// registers a window with the Stage, writes a low watermark into the WAL (a
// transactional logical decoding message, prefix MessagePrefix, content
// "low:<token>", in a transaction of its own), reads the chunk, and writes a
// high watermark ("high:<token>"). The Stage sits in the slot source
// between reading and evaluation (relay/pipeline.go; every transaction
// passes Stage.Intercept in stream order before it becomes a
// dispatch.Batch) and sees both watermarks in the stream, in WAL order:
//
//   - between them, every change of the table marks its primary key as
//     changed: the stream carries a state newer than (or as new as) the
//     chunk's copy, so the chunk's row is dropped;
//   - a transaction that committed before the low watermark but was still
//     running for the chunk's snapshot (pg_current_snapshot of the read)
//     counts as changed too: its commit record precedes the watermark, its
//     rows did not reach the read (a backend between flushing its commit
//     and leaving the running list, or waiting for a synchronous standby).
//     If the stream carried it after the window was registered its keys
//     are known and dropped; if before, the chunk is read again;
//   - at the high watermark the chunk's remaining rows are appended to the
//     high watermark's transaction as read changes: they enter the
//     dispatcher in that transaction's batch, at that place in the
//     stream: after every change the chunk saw and before every change it
//     did not.
//
// So for every key the events follow the order in which the row changed,
// and the live stream waits for little more than one chunk: the Runner
// sizes chunks to about chunkTarget of delivery, and writes a chunk's high
// watermark only once the chunks before the previous one are settled and
// the previous one is about to be (its expected settling time less the
// watermark's measured round trip through the stream), so the endpoint
// never idles between chunks and at most two chunks are unsettled. A change of
// the table the window cannot tie to one key (a truncate, or a delete whose
// replica identity is not the primary key) makes the chunk read again.
//
// # Progress and ids
//
// The read rows belong to the high watermark's transaction, so the slot is
// confirmed past it only once every one of their deliveries is settled
// (docs/architecture.md). The Runner records the chunk's last key in the
// state schema when the settled position (Stage.Settled, called by the
// slot source's settle.Tracker beside the reader's Ack) reaches that
// transaction's end. After a crash the backfill resumes after the last
// recorded key; the chunks sent since are sent
// again with the same event ids (event.NewReadID: the backfill's id seed,
// the row's primary key and the rule), and the watermarks of the dead
// process, decoded again from the slot, carry tokens no window knows and
// are ignored.
package backfill
