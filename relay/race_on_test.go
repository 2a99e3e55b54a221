//go:build race

package relay_test

// raceEnabled: the race detector multiplies time and memory, so load tests
// use smaller numbers under it.
const raceEnabled = true
