//go:build race

package main

// raceDetector reports whether the tests run with the race detector, which makes timing bounds
// meaningless.
const raceDetector = true
