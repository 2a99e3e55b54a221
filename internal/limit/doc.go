// Package limit paces deliveries to one endpoint: an adaptive concurrency
// limit that grows while the endpoint answers quickly and shrinks when it
// slows down or refuses work (Adaptive), an optional fixed request rate
// (Rate, from an endpoint's rate_limit), and a pause that a 429 or 503
// with Retry-After imposes on the whole endpoint. Gate combines the three;
// the dispatcher asks a Gate before every attempt, first or retry. What a
// gate learns it signals, so that other instances sending to the endpoint
// can follow it (peers.go).
//
// docs/config.md describes the endpoint attributes (concurrency, rate_limit)
// and docs/operations.md how the limit behaves and how it was measured.
package limit
