//go:build race

package main

// raceEnabled: the race detector slows the test process (its receiver and
// helpers), so load tests use smaller numbers under it.
const raceEnabled = true
