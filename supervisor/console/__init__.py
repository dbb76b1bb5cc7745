"""The people-facing views: rendering snapshots with rich, the live monitor, and the attach server
and client that carry snapshots over a local socket.

What may live here: code that draws or carries snapshots. What may not: anything the tree or the
rules need to run; these modules only read snapshots through :mod:`supervisor.observe`.
"""
