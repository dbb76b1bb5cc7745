"""The pure rule cores: breaker, retry schedule, bulkhead, sliding window, TTL/LRU cache, health
window, timeout budget and restart intensity.

What may live here: state machines that take the current time as an argument and return decisions
or frozen values. What may not: any import of trio, any clock read, any I/O (a test enforces the
first). The public home of these names is :mod:`supervisor.cores`.
"""
