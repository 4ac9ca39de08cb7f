"""Benchmarks and fault drills (`scripts/bench`, `scripts/drill`): load on loopback against a
sandbox Asterisk, measured at the edges (SIPp) and from the service's own timings."""
