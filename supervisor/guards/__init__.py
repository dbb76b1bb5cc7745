"""The trio shells that drive the rule cores, and the decorators of the function-level API.

What may live here: code that reads trio's clock, sleeps, parks waiters or opens cancel scopes
around a call, on top of the cores in :mod:`supervisor.rules`. What may not: anything that knows of
actors, supervision trees, the event bus or the monitor.
"""
