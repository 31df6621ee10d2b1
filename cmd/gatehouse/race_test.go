//go:build race

package main

// raceDetector: the tests run under the race detector, which slows every
// request several times over; latency comparisons are made without it
// (.ci/run runs them again so).
const raceDetector = true
