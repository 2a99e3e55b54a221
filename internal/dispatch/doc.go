// Package dispatch delivers events to endpoints: the first attempt in
// memory, failures and overflow to the retry store, retries from the store.
// Its stages, who owns which state, and the lock rules are described in
// docs/architecture.md.
//
// Promises kept here:
//
//   - A batch is settled (Batch.Settled, once) only when each of its
//     deliveries was accepted with a 2xx or durably written to the retry
//     store, and its failed evaluations are stored.
//   - The happy path writes nothing: a delivery accepted on its first attempt
//     costs no write, unless the attempts log is set to "all" (batched).
//   - Memory is bounded: at most MaxInFlight deliveries wait in memory, each
//     endpoint holds at most half of it and only what it can deliver within
//     a few seconds (pace.go). Past either cap a delivery goes to the store.
//   - Endpoints are independent: each has its own lanes, gate and retries.
//   - With ordering = "key", deliveries of one key to one endpoint are made
//     one after another in commit order (ledger.go).
//   - No lock is held while anything blocks: every mutex is a leaf.
package dispatch
