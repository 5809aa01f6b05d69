//go:build race

package router_test

// raceDetector: the race detector slows everything several times, which
// breaks the scaled clock of the quota scenarios; they run without it.
const raceDetector = true
