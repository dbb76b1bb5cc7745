"""The adaptive bulkhead's trio shell: a bulkhead whose number of slots follows observed latency.

:class:`AdaptiveBulkhead` is a :class:`~supervisor.Bulkhead` (same slots, queue, refusals and
cancellation rules, same :class:`~supervisor.cores.BulkheadCore`) whose ``max_concurrent`` is set,
after every call, by an :class:`~supervisor.cores.AdaptiveLimitCore` fed with the call's latency
and outcome (Netflix concurrency-limits' ``AIMDLimit`` and ``GradientLimit``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import trio

from .._config import QUEUE, exception_types
from .._errors import ConfigError
from ..rules._adaptive import AdaptiveLimitCore, LimitAlgorithm, LimitStatistics
from ._bulkhead import Bulkhead
from ._decorate import decorate, qualname_of

P = ParamSpec("P")
R = TypeVar("R")


class AdaptiveBulkhead(Bulkhead):
    """A bulkhead whose limit follows latency: at most ``limit`` calls run at once, up to
    ``max_queued`` more wait in arrival order, any beyond that is refused with
    :class:`~supervisor.BulkheadFullError`; the limit starts at ``initial_limit`` and moves between
    ``min_limit`` and ``max_limit`` after every call, as
    :class:`~supervisor.cores.AdaptiveLimitCore` says (``algorithm`` ``"gradient"`` or
    ``"aimd"``, and its other options).

    Each call that returns is a latency sample (seconds from taking the slot to returning); each
    call that raises one of ``exceptions`` (default: any ``Exception``) is a failure, which
    lowers the limit; any other exception and every cancellation count as nothing. A limit that
    grows hands its new slots to the oldest waiters at once; one that shrinks takes no slot
    away from a running call.

    Use it as a decorator or with ``async with``, as a :class:`~supervisor.Bulkhead`;
    ``statistics().max_concurrent`` and :attr:`limit` are the current limit.

    Raises:
        ConfigError: a bad limit option (see :class:`~supervisor.cores.AdaptiveLimitCore`), or
            ``max_queued`` not an integer >= 0.
        TypeError: ``name`` is not a string, or ``exceptions`` are not ``Exception`` classes.
    """

    __slots__ = ("_exceptions", "_limit", "_started")

    def __init__(
        self,
        name: str,
        *,
        max_limit: int = 200,
        min_limit: int = 1,
        initial_limit: int = 10,
        max_queued: int = 0,
        algorithm: str | LimitAlgorithm = "gradient",
        tolerance: float | None = None,
        backoff_ratio: float = 0.9,
        smoothing: float = 0.2,
        queue_size: int = 4,
        probe_interval: int | None = 1000,
        exceptions: type[Exception] | tuple[type[Exception], ...] = Exception,
    ) -> None:
        limit = AdaptiveLimitCore(
            algorithm=algorithm,
            initial_limit=initial_limit,
            min_limit=min_limit,
            max_limit=max_limit,
            tolerance=tolerance,
            backoff_ratio=backoff_ratio,
            smoothing=smoothing,
            queue_size=queue_size,
            probe_interval=probe_interval,
        )
        super().__init__(name, limit.limit, int(QUEUE.check("max_queued", max_queued)))
        self._limit = limit
        self._exceptions = exception_types(exceptions)
        self._started: dict[trio.lowlevel.Task, float] = {}

    @property
    def limit(self) -> int:
        """The concurrency limit now."""
        return self._limit.limit

    @property
    def limit_core(self) -> AdaptiveLimitCore:
        """The pure limit algorithm this shell feeds."""
        return self._limit

    def limit_statistics(self) -> LimitStatistics:
        """A snapshot of the limit algorithm (latency baseline, recent latency, counts)."""
        return self._limit.statistics()

    def release_after(self, *, latency: float | None = None, failed: bool = False) -> None:
        """Give back a slot taken by :meth:`acquire` and feed the limit: a success ``latency``
        (seconds > 0; a zero latency, possible under a mock clock, is counted as nothing),
        ``failed=True`` for a failure, neither for a call that counts as nothing.

        Raises:
            RuntimeError: no slot is held.
            ConfigError: both ``latency`` and ``failed`` were given.
        """
        core = self._core
        if core.running <= 0:
            raise RuntimeError("AdaptiveBulkhead.release_after() without a slot taken")
        if failed and latency is not None:
            raise ConfigError("give `latency` (a success) or `failed=True`, not both")
        woken: list[trio.lowlevel.Task] = []
        if failed:
            new = self._limit.on_failure()
        elif latency is not None and latency > 0.0:
            new = self._limit.on_sample(latency, in_flight=core.running)
        else:
            new = core.max_concurrent
        if new != core.max_concurrent:
            woken = core.set_limit(new)
        task = core.leave()
        if task is not None:
            woken.append(task)
        for task in woken:
            trio.lowlevel.reschedule(task)

    def release(self) -> None:
        """Give back the slot taken by :meth:`acquire`, counting nothing for the limit."""
        self.release_after()

    async def __aenter__(self) -> AdaptiveBulkhead:
        await self.acquire()
        self._started[trio.lowlevel.current_task()] = trio.current_time()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        started = self._started.pop(trio.lowlevel.current_task())
        self.finish(started, exc)

    def finish(self, started: float, exc: BaseException | None) -> None:
        """Give back the slot of a call that took it at trio time ``started`` and ended now with
        ``exc`` (``None``: it returned): a latency sample, a failure (``exc`` one of
        ``exceptions``) or nothing (any other exception, a cancellation)."""
        if exc is None:
            self.release_after(latency=trio.current_time() - started)
        elif isinstance(exc, self._exceptions):
            self.release_after(failed=True)
        else:
            self.release_after()

    async def _around(self, call: Callable[[], Awaitable[Any]]) -> Any:
        await self.acquire()
        started = trio.current_time()
        try:
            result = await call()
        except BaseException as exc:
            self.finish(started, exc)
            raise
        self.finish(started, None)
        return result

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Guard ``fn`` (an ``async def`` function or method) with this bulkhead.

        Raises:
            TypeError: ``fn`` is a plain function.
        """
        return decorate(
            fn,
            rule="adaptive_bulkhead",
            around_async=self._around,
            around_sync=None,
            extra={"bulkhead": self},
        )

    def __repr__(self) -> str:
        core = self._core
        return (
            f"<AdaptiveBulkhead {self.name!r} {core.running}/{core.max_concurrent} running "
            f"(limit {self._limit.min_limit}..{self._limit.max_limit}), "
            f"{core.queued}/{core.max_queued} queued>"
        )


def adaptive_bulkhead(
    *,
    name: str | None = None,
    **options: Any,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Make one :class:`AdaptiveBulkhead` per decorated function (named ``name`` if given, else
    after its ``__qualname__``), shared by every caller, exposed as ``fn.bulkhead``. ``options``
    are :class:`AdaptiveBulkhead`'s keyword options.

    Raises:
        ConfigError, TypeError: at once, for a bad option (an unknown option is a
            ``TypeError``), as :class:`AdaptiveBulkhead` raises them.
    """
    AdaptiveBulkhead(name if name is not None else "", **options)  # validate now

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        return AdaptiveBulkhead(name if name is not None else qualname_of(fn), **options)(fn)

    return decorator
