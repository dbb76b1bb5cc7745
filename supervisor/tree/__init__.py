"""Supervision trees: specs and their loading from dicts and TOML, supervisor actors with OTP
semantics, guarded services and ``run_tree``.

What may live here: code that spawns, watches and restarts actors, and the request path of a
guarded service. What may not: rendering, sockets, the command line.
"""
