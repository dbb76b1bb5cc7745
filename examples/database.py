"""Database calls retried on transient driver errors only.

``@retry(max_attempts=4, exceptions=(OperationalError, TimeoutError), backoff_factor=1.5)`` retries
the errors a database driver raises when the connection drops (``OperationalError``) and queries
that ran too long (``TimeoutError``, which covers the ``OperationTimeout`` raised by
``@timeout``). Any other error, such as a violated constraint, propagates at once: retrying it
would fail the same way. The driver is an in-file fake that follows a script.

Run it with ``python examples/database.py``. The fake's latencies and the retry delays run on
trio's clock; the script runs under a :class:`trio.testing.MockClock` that jumps ahead whenever
every task sleeps, so it finishes at once.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import trio
import trio.testing

from supervisor import retry, timeout


class OperationalError(Exception):
    """The fake driver's error for a lost connection or an unavailable server (transient)."""


class IntegrityError(Exception):
    """The fake driver's error for a violated constraint (permanent: retrying cannot help)."""


class FakeDriver:
    """A fake database driver: each query takes 20 ms and then follows the next step of its
    script: ``"ok"``, ``"drop"`` (connection lost), ``"hang"`` (never answers) or
    ``"duplicate"`` (unique constraint violated). The last step repeats."""

    def __init__(self, *steps: str) -> None:
        self.steps: deque[str] = deque(steps)
        self.queries = 0

    def script(self, *steps: str) -> None:
        """Replace the script."""
        self.steps = deque(steps)

    async def execute(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run ``sql`` the way the script says."""
        self.queries += 1
        await trio.sleep(0.02)
        step = self.steps.popleft() if len(self.steps) > 1 else self.steps[0]
        print(f"  query {self.queries}: {sql} -> {step}")
        if step == "drop":
            raise OperationalError("server closed the connection unexpectedly")
        if step == "hang":
            await trio.sleep_forever()
        if step == "duplicate":
            raise IntegrityError(f"duplicate key value violates unique constraint ({params[0]})")
        return [params]


db = FakeDriver("ok")


@retry(max_attempts=4, exceptions=(OperationalError, TimeoutError), backoff_factor=1.5)
@timeout(seconds=2.0)
async def fetch_user(user_id: int) -> list[tuple[Any, ...]]:
    """Read one user: retried on a lost connection and on a query running past 2 s."""
    return await db.execute("SELECT * FROM users WHERE id = %s", user_id)


@retry(max_attempts=4, exceptions=(OperationalError, TimeoutError), backoff_factor=1.5)
async def insert_user(user_id: int) -> None:
    """Insert one user: retried on a lost connection; a duplicate key propagates at once."""
    await db.execute("INSERT INTO users (id) VALUES (%s)", user_id)


async def main() -> None:
    """Show transient errors retried, then a non-matching error propagating at once."""
    print("1. transient errors: the connection drops, then a query hangs")
    db.script("drop", "hang", "ok")
    rows = await fetch_user(7)
    print(f"fetch_user(7) = {rows} after {db.queries} queries")

    print("2. a constraint violation is not retried")
    db.script("duplicate")
    before = db.queries
    try:
        await insert_user(7)
    except IntegrityError as exc:
        print(f"insert_user(7) raised IntegrityError after {db.queries - before} query: {exc}")


if __name__ == "__main__":
    # The fakes sleep on trio's clock; a MockClock that jumps ahead makes the demo instant.
    # Real code calls plain trio.run(main).
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
