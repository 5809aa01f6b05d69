//go:build race

package sandbox

// raceEnabled: the race runtime cannot start under a small RLIMIT_DATA.
const raceEnabled = true
