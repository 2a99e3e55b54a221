// Package dispatch delivers events to endpoints: the first attempt in
// memory, failures and overflow to the retry store, retries from the store.
//
// Promises kept here (DESIGN.md's invariants 1, 3, 4 and 5):
//
//   - A delivery is settled, and only then counted toward the LSN watermark
//     (package settle), when its endpoint answered 2xx or when the delivery
//     has been durably written to the retry store.
//   - The happy path writes nothing: a delivery accepted on its first attempt
//     costs no write, unless the attempts log is set to "all" (batched).
//   - Memory is bounded: at most MaxInFlight deliveries wait in memory, and
//     each endpoint holds at most half of it, and only what it can deliver within
//     a few seconds (pace.go). Past either cap a
//     delivery goes to the store, its transaction settles, and the slot
//     advances.
//   - Endpoints are independent: each has its own lanes and workers, and
//     retries are limited per endpoint, so a dead or slow endpoint only
//     fills its own lanes.
//   - With ordering = "key", deliveries of one key to one endpoint are made
//     one after another in commit order. Once a delivery of a key fails, the
//     key is "blocked": its later deliveries go to the store behind it, and
//     the store hands out only the oldest pending delivery of a key (by
//     commit LSN). The key returns to the in-memory path once the store has
//     nothing pending for it.
package dispatch
