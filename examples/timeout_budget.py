"""One request, one time budget, split 30/50/20 across three downstream calls.

A request handler has 2 seconds in all. It gives 30 % of them to authentication, 50 % to loading
the orders and 20 % to recommendations: each share is ``budget.share(fraction)`` seconds, that is
``min(budget.remaining, total * fraction)``, applied with ``timeout(seconds)``. The recommendation
service is slow today, so its call times out within its 0.4 s share and the page is served without
recommendations. The services are in-file fakes.

Run it with ``python examples/timeout_budget.py``. The fakes sleep on trio's clock; the script runs
under a :class:`trio.testing.MockClock` that jumps ahead whenever every task sleeps, so it
finishes at once while printing the times the request would take.
"""

from __future__ import annotations

import trio
import trio.testing

from supervisor import OperationTimeout, TimeoutBudget, timeout


def log(budget: TimeoutBudget, message: str) -> None:
    """Print ``message`` after the time spent since ``budget`` started."""
    print(f"[{trio.current_time() - budget.started_at:4.2f}s] {message}")


async def authenticate(token: str) -> str:
    """The fake auth service: answers in 0.2 s."""
    await trio.sleep(0.2)
    return "alice" if token == "t0k3n" else "anonymous"


async def load_orders(user: str) -> list[str]:
    """The fake orders service: answers in 0.7 s."""
    await trio.sleep(0.7)
    return [f"{user}-order-1", f"{user}-order-2"]


async def recommendations(user: str) -> list[str]:
    """The fake recommendation service: slow today, it takes 1.5 s."""
    await trio.sleep(1.5)
    return [f"something for {user}"]


async def handle_request(token: str) -> dict[str, object]:
    """Serve one page within a 2 s budget, split 30/50/20."""
    budget = TimeoutBudget(2.0)

    share = budget.share(0.3)
    user = await timeout(share)(authenticate)(token)
    log(budget, f"authenticated {user!r} (share {share:.2f}s); {budget.remaining:.2f}s left")

    share = budget.share(0.5)
    orders = await timeout(share)(load_orders)(user)
    log(budget, f"loaded {len(orders)} orders (share {share:.2f}s); {budget.remaining:.2f}s left")

    share = budget.share(0.2)
    try:
        recs = await timeout(share)(recommendations)(user)
    except OperationTimeout as exc:
        recs = []
        log(
            budget,
            f"recommendations timed out after {exc.seconds:.2f}s; serving the page without them",
        )
    log(budget, f"page served; {budget.remaining:.2f}s of the budget left")
    return {"user": user, "orders": orders, "recommendations": recs}


async def main() -> None:
    """Handle one request and print where its time went."""
    page = await handle_request("t0k3n")
    print(f"page: {page}")


if __name__ == "__main__":
    # The fakes sleep on trio's clock; a MockClock that jumps ahead makes the demo instant.
    # Real code calls plain trio.run(main).
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
