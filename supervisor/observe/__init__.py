"""What a running system reports: events, the event bus, per-service aggregates, the metrics hub
and health from events, snapshots as plain data, and the exporters (logging, Prometheus,
OpenTelemetry).

What may live here: code that consumes events and produces numbers, text or snapshots.
What may not: any import of the tree, of actors or of rich. The tree hands metrics what they need
through the small protocols defined here, as OTP's supervisor reports to ``logger``, which knows
nothing of supervisors.
"""
