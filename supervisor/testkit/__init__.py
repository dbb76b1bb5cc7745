"""Layer 7: tools to test a program's resilience: an event recorder, waits that fail a test
clearly instead of hanging, and the pytest plugin (``supervisor.testkit.pytest_plugin``).

What may live here: helpers that drive a running tree or a bus from a test (waiting for a state,
recording events), and the pytest plugin with its fixtures. The testing mode itself
(:func:`supervisor.testing`) lives in ``guards/_testing.py``, beside the retry and breaker shells
that read it.

What may not: anything the library needs to run (nothing below imports this layer), and an import
of pytest outside ``pytest_plugin.py`` (``import supervisor`` must work without pytest).
"""
