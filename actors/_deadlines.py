"""The deadline keeper: one trio task per system that answers every ask whose deadline came.

Why not a cancel scope per caller: entering and leaving a ``trio.CancelScope`` costs about half a
raw round trip, and the handler's own scope already carries the deadline. The keeper holds the
pending deadlines in a heap and sleeps until the earliest; an ``ask(timeout=...)`` only pushes
onto the heap (and moves the keeper's wake-up earlier in the rare case its deadline is the
earliest). Answered requests are not taken out of the heap (that would cost every answer a
search); they are skipped when their time comes, and pruned when they outnumber the live ones.

Under ``trio.testing.MockClock`` the keeper's wake-up is a registered deadline like any other, so
an autojumping clock may stop at the deadline of a request already answered: nothing is woken
there but the keeper, and no other deadline moves.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from ._envelope import Request

__all__ = ["DeadlineKeeper"]

# Below this many entries the heap is never pruned.
_PRUNE_FLOOR = 1024


class DeadlineKeeper:
    """Answers pending requests at their deadlines (see the module docstring)."""

    __slots__ = ("_heap", "_nursery", "_order", "_prune_at", "_scope", "_started", "_wake_at")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Request]] = []
        self._order = itertools.count()
        self._nursery: trio.Nursery | None = None
        self._started = False
        self._scope: trio.CancelScope | None = None
        self._wake_at = math.inf
        self._prune_at = _PRUNE_FLOOR

    def open(self, nursery: trio.Nursery) -> None:
        """Use ``nursery`` (the system's root) for the keeper's task, started on first use."""
        self._nursery = nursery

    def watch(self, request: Request) -> None:
        """Answer ``request`` with ``AskTimeout`` at ``request.deadline`` unless it is answered
        (or abandoned) before."""
        heap = self._heap
        deadline = request.deadline
        heapq.heappush(heap, (deadline, next(self._order), request))
        if deadline < self._wake_at:
            self._wake_at = deadline
            scope = self._scope
            if scope is not None:
                scope.deadline = deadline
            elif not self._started and self._nursery is not None:
                self._started = True
                self._nursery.start_soon(self._run, name="actors deadline keeper")
        if len(heap) > self._prune_at:
            self._prune()

    def _prune(self) -> None:
        heap = self._heap
        heap[:] = [entry for entry in heap if entry[2].task is not None]
        heapq.heapify(heap)
        self._prune_at = max(_PRUNE_FLOOR, 2 * len(heap))

    async def _run(self) -> None:
        heap = self._heap
        while True:
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                heapq.heappop(heap)[2].expire()
            self._wake_at = wake_at = heap[0][0] if heap else math.inf
            with trio.CancelScope(deadline=wake_at) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
