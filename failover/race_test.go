//go:build race

package failover

// raceEnabled: under the race detector the property tests' default size is
// a fifth (one goroutine per sequence: the detector has little to find in a
// long run); -iters still sets any size.
const raceEnabled = true
