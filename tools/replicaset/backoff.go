package replicaset

import "time"

// Backoff says how long the set waits before it starts again a replica that exited on its
// own, as the kubelet's CrashLoopBackOff does for a container: Initial after the first exit,
// doubled after each exit that came soon after the previous start, up to Max; a replica that
// stayed up for Reset starts again from Initial.
type Backoff struct {
	Initial, Max, Reset time.Duration
}

// DefaultBackoff is the set's backoff. The kubelet waits 10 s doubling up to 5 min and resets
// after 10 min up; a developer watching a terminal wants the replica back sooner, so this
// starts at 1 s and stops doubling at 30 s, which still keeps a replica that cannot start
// (bad configuration, database down) from spinning, and resets after a minute up.
var DefaultBackoff = Backoff{Initial: time.Second, Max: 30 * time.Second, Reset: time.Minute}

// next returns the delay before the next start, given the previous delay (0 for none) and
// how long the replica was up (ready) before it exited, 0 if it never became ready.
func (b Backoff) next(prev, upFor time.Duration) time.Duration {
	if prev == 0 || upFor >= b.Reset {
		return b.Initial
	}
	return min(2*prev, b.Max)
}
