"""Benchmarks: every figure is a ratio against raw trio (or a peer) measured in the same run."""
