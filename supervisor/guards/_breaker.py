"""The circuit breaker's trio shell: :class:`CircuitBreaker` (its factory is in `_breaker_factory`).

It drives the pure :class:`~supervisor.cores.BreakerCore` (``supervisor/rules/_breaker.py``) and
reads ``trio.current_time()`` only where a decision needs it, so a call through a closed breaker
costs a few attribute reads and no checkpoint. The supervision tree drives the very same core from
its guarded services.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

import trio

from .._config import COUNT, DURATION, UNSET, Unset
from .._errors import CircuitOpenError, ConfigError, shown
from .._listeners import Listeners
from ..rules._breaker import (
    _DEFAULT_FAILURE_THRESHOLD,
    _DEFAULT_HALF_OPEN_MAX_CALLS,
    _DEFAULT_SUCCESS_THRESHOLD,
    _DEFAULT_TIMEOUT,
    _ENV_FAILURE_THRESHOLD,
    _ENV_HALF_OPEN_REQUESTS,
    _ENV_SUCCESS_THRESHOLD,
    _ENV_TIMEOUT,
    BreakerCore,
    CircuitBreakerConfig,
    CircuitBreakerStatistics,
    CircuitState,
    CircuitStateChange,
    ExceptionTypes,
    Permit,
    Refusal,
)
from ..rules._rate_breaker import OpenBackoff, RateWindow
from ..store._base import Store
from . import _testing
from ._breaker_ext import MeasuredGuard, measured_core
from ._decorate import decorate, is_async_callable, qualname_of
from ._generators import WholeIteration, generator_kind

P = ParamSpec("P")
R = TypeVar("R")

ExcludeOption = (
    type[BaseException] | Callable[[BaseException], object] | tuple[Any, ...] | list[Any] | None
)
"""Errors a breaker counts as neither failure nor success: classes, predicates, or a mix."""


def _outside_trio_clock() -> float:
    # Only used when a breaker guards plain functions called outside trio: there is no trio
    # clock then, and a breaker cannot half-open without some monotonic time.
    return time.monotonic()


def _entry_key() -> object:
    try:
        return trio.lowlevel.current_task()
    except RuntimeError:
        return threading.get_ident()


class CircuitBreaker:
    """A circuit breaker around calls to one dependency.

    * CLOSED: a counted failure adds one to the run of consecutive failures, a success resets it to
      0; when the run reaches ``failure_threshold`` the breaker opens.
    * OPEN: calls are refused at once with :class:`~supervisor.CircuitOpenError` (its
      ``retry_after`` is the time left until half-open); the guarded function is not invoked.
      From exactly ``timeout`` seconds after opening the breaker is HALF_OPEN (``state`` says so
      with no call needed).
    * HALF_OPEN: at most ``half_open_max_calls`` trial calls run at once; others are refused with
      ``CircuitOpenError`` (``retry_after=0``). A counted failure reopens the breaker (its timer
      starts anew); ``success_threshold`` successful trials close it, with every count reset.

    A counted failure is an :class:`Exception` that is an instance of ``expected_exception``; any
    other exception propagates unchanged and counts as neither failure nor success. Cancellation
    (and any ``BaseException`` that is not an ``Exception``) counts as nothing and propagates.
    Every trial slot taken is given back, whatever the outcome. An outcome that arrives after the
    breaker changed state since its call was let in (e.g. the fourth of four concurrent failures
    with ``failure_threshold=3``) counts nothing.

    Forms: ``@breaker`` on an ``async def`` or plain function (one breaker for every caller);
    ``async with breaker:`` and ``with breaker:``; ``await breaker.call(fn, *args, **kwargs)``.
    None of them adds a checkpoint or a cancel scope of its own.

    Settings: explicit argument > ``config`` > environment variable (read here, at creation) >
    built-in default. ``failure_threshold`` (``CIRCUIT_BREAKER_FAILURE_THRESHOLD``, 5),
    ``success_threshold`` (``CIRCUIT_BREAKER_SUCCESS_THRESHOLD``, 2), ``timeout`` in seconds
    (``CIRCUIT_BREAKER_TIMEOUT``, 60.0), ``half_open_max_calls``
    (``CIRCUIT_BREAKER_HALF_OPEN_REQUESTS``, 3), ``expected_exception`` (``Exception``).

    Beyond API.md (keyword-only, each off by default; see docs/rules.md): ``window`` (a
    :class:`~supervisor.RateWindow`: open on the failure rate or slow-call rate of the last N
    calls or T seconds, half-open trials decided as a rate), ``open_backoff`` (an
    :class:`~supervisor.OpenBackoff`: each reopening after a failed trial waits longer),
    ``exclude`` (exception classes and/or predicates whose errors count as neither failure nor
    success), ``is_failure`` (decides from an expected error whether it counts) and
    ``is_failure_result`` (decides from a result whether the call failed; the result is returned
    all the same). A breaker given any of them drives a
    :class:`~supervisor.cores.RateBreakerCore` and reads the clock at each call's start and end;
    one given none keeps the plain core and its fast path.

    Time: trio's clock (``trio.current_time()``) inside ``trio.run``. A breaker that guards plain
    functions called outside trio uses ``clock`` (default: the monotonic clock of :mod:`time`);
    use one breaker either inside trio or outside it, not both, as the two clocks differ.

    Store: with ``store`` (a :class:`~supervisor.MemoryStore` or a
    :class:`~supervisor.RedisStore`), breakers of the same ``name`` and store are one breaker:
    in this process for a memory store, across every process for a Redis one (see
    ``docs/scale-out.md``: the request path stays local, the fleet's decisions arrive from
    outside it, ``reset()`` and ``force_open()`` act fleet-wide). Without one, the breaker has
    its state to itself.

    Raises:
        ConfigError: a bad argument, config field or environment value, at creation; a ``store``
            that is not a store, or that already has a breaker of this name with other settings.
    """

    __slots__ = ("__weakref__", "_clock", "_core", "_entries", "_listeners", "_measured")

    def __init__(
        self,
        name: str,
        failure_threshold: int | Unset = UNSET,
        success_threshold: int | Unset = UNSET,
        timeout: float | Unset = UNSET,
        expected_exception: ExceptionTypes | Unset = UNSET,
        *,
        half_open_max_calls: int | Unset = UNSET,
        config: CircuitBreakerConfig | None = None,
        clock: Callable[[], float] | None = None,
        store: Store | None = None,
        window: RateWindow | None = None,
        open_backoff: OpenBackoff | None = None,
        exclude: ExcludeOption = (),
        is_failure: Callable[[Exception], object] | None = None,
        is_failure_result: Callable[[Any], object] | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise ConfigError(f"`name` must be a string (got {shown(name)})")
        if store is not None and not isinstance(store, Store):
            raise ConfigError(f"`store` must be a MemoryStore or a RedisStore (got {shown(store)})")
        if config is not None and not isinstance(config, CircuitBreakerConfig):
            raise ConfigError(f"`config` must be a CircuitBreakerConfig (got {shown(config)})")
        if config is not None:
            failure_threshold = (
                config.failure_threshold if failure_threshold is UNSET else failure_threshold
            )
            success_threshold = (
                config.success_threshold if success_threshold is UNSET else success_threshold
            )
            timeout = config.timeout if timeout is UNSET else timeout
            if expected_exception is UNSET:
                expected_exception = config.expected_exception
        self._core = BreakerCore(
            name=name,
            failure_threshold=COUNT.resolve_int(
                "failure_threshold",
                failure_threshold,
                env=_ENV_FAILURE_THRESHOLD,
                default=_DEFAULT_FAILURE_THRESHOLD,
            ),
            success_threshold=COUNT.resolve_int(
                "success_threshold",
                success_threshold,
                env=_ENV_SUCCESS_THRESHOLD,
                default=_DEFAULT_SUCCESS_THRESHOLD,
            ),
            timeout=DURATION.resolve(
                "timeout", timeout, env=_ENV_TIMEOUT, default=_DEFAULT_TIMEOUT
            ),
            half_open_max_calls=COUNT.resolve_int(
                "half_open_max_calls",
                half_open_max_calls,
                env=_ENV_HALF_OPEN_REQUESTS,
                default=_DEFAULT_HALF_OPEN_MAX_CALLS,
            ),
            expected_exception=Exception if expected_exception is UNSET else expected_exception,
        )
        if store is not None:  # the store keeps the rule's state: the checked settings, its core
            settled = self._core
            self._core = store.breaker_core(
                name=name,
                failure_threshold=settled.failure_threshold,
                success_threshold=settled.success_threshold,
                timeout=settled.timeout,
                half_open_max_calls=settled.half_open_max_calls,
                expected_exception=settled.expected_exception,
                on_change=self._publish,
            )
        rich = measured_core(
            self._core,
            window=window,
            open_backoff=open_backoff,
            exclude=exclude,
            is_failure=is_failure,
            is_failure_result=is_failure_result,
        )
        self._measured: MeasuredGuard | None = None
        if rich is not None:
            if store is not None:
                raise TypeError(
                    "`window`, `open_backoff`, `exclude`, `is_failure` and `is_failure_result` "
                    "keep the breaker's state in this process: they cannot be combined with "
                    f"`store` (got store={shown(store)})"
                )
            self._core = rich
            self._measured = MeasuredGuard(self, rich)
        self._clock = _outside_trio_clock if clock is None else clock
        self._listeners: Listeners[CircuitStateChange] = Listeners()
        self._entries: dict[object, list[Permit]] = {}
        _testing.track(self)  # findable by name for supervisor.testing(open_breakers=...)

    # -- settings and inspection --------------------------------------------------------------

    @property
    def name(self) -> str:
        """The breaker's name (a ``circuit_breaker`` one takes the function's ``__qualname__``)."""
        return self._core.name

    @property
    def core(self) -> BreakerCore:
        """The pure state machine behind this breaker (shared with the supervision tree)."""
        return self._core

    @property
    def failure_threshold(self) -> int:
        """Counted failures in a row that open the breaker."""
        return self._core.failure_threshold

    @property
    def success_threshold(self) -> int:
        """Successful trial calls that close a half-open breaker."""
        return self._core.success_threshold

    @property
    def timeout(self) -> float:
        """Seconds from opening until the breaker is half-open."""
        return self._core.timeout

    @property
    def half_open_max_calls(self) -> int:
        """Trial calls allowed at once while half-open."""
        return self._core.half_open_max_calls

    @property
    def expected_exception(self) -> tuple[type[BaseException], ...]:
        """The exception classes that count as failures."""
        return self._core.expected_exception

    def _now(self) -> float:
        try:
            return trio.current_time()
        except RuntimeError:
            return self._clock()

    def _publish(self) -> None:
        changes = self._core.take_changes()
        if self._listeners:
            for change in changes:
                self._listeners.emit(change)

    @property
    def state(self) -> CircuitState:
        """The state now. Reading it applies (and publishes) an OPEN -> HALF_OPEN change that fell
        due, so it says HALF_OPEN from exactly ``timeout`` after opening with no call needed."""
        core = self._core
        if core.free_permit is not None:
            return CircuitState.CLOSED
        state = core.state_at(self._now())
        if core.has_changes:
            self._publish()
        return state

    @property
    def failure_count(self) -> int:
        """The current run of consecutive counted failures (a success resets it; kept while open,
        cleared when the breaker closes)."""
        return self._core.failure_count

    def statistics(self) -> CircuitBreakerStatistics:
        """A snapshot of the breaker's state and totals (reading it may apply a due half-open)."""
        state = self.state
        core = self._core
        return CircuitBreakerStatistics(
            name=core.name,
            state=state,
            forced_open=core.forced_open,
            failure_count=core.failure_count,
            trial_successes=core.trial_successes,
            trials_in_flight=core.trials_in_flight,
            opened_at=core.opened_at,
            successes=core.successes,
            failures=core.failures,
            ignored=core.ignored,
            refused=core.refused,
            window=None if self._measured is None else core.window_statistics(self._now()),  # type: ignore[attr-defined]
        )

    def __repr__(self) -> str:
        core = self._core
        forced = " (forced)" if core.forced_open else ""
        return (
            f"<CircuitBreaker {core.name!r} {core._state.value}{forced}, "
            f"{core.failure_count}/{core.failure_threshold} failures, "
            f"{core.trials_in_flight}/{core.half_open_max_calls} trials>"
        )

    # -- control ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Close the breaker with every count cleared, lifting a ``force_open()`` hold. Calls let in
        before count nothing when they end."""
        self._core.reset(self._now())
        self._publish()

    def force_open(self) -> None:
        """Open the breaker and hold it open, refusing every call (``retry_after=inf``), until
        :meth:`reset`; it never turns half-open by itself. Calls let in before count nothing when
        they end."""
        self._core.force_open(self._now())
        self._publish()

    def add_listener(self, callback: Callable[[CircuitStateChange], object]) -> None:
        """Call ``callback(change)`` synchronously for every state change, in order.

        A listener that raises does not stop the others; its error propagates to whoever caused
        the change, after all listeners were called.
        """
        self._listeners.add(callback)

    def remove_listener(self, callback: Callable[[CircuitStateChange], object]) -> None:
        """Stop calling ``callback``; :class:`ValueError` if it was never added."""
        self._listeners.remove(callback)

    # -- the guard ----------------------------------------------------------------------------

    def _decide(self) -> Permit | CircuitOpenError:
        # A call while not CLOSED: its permit, or the error that refuses it (raised by the
        # caller's own frame, so a refusal's traceback is one frame deep).
        core = self._core
        try:
            now = trio.current_time()
        except RuntimeError:
            now = self._clock()
        retry_after = core.refusal(now)
        if retry_after is not None:
            return CircuitOpenError.refusing(core.name, retry_after)
        decision = core.try_acquire(now)
        if core.has_changes:
            self._publish()
        if type(decision) is Refusal:  # a fleet's core, gated: its own rules refused
            return CircuitOpenError(core.name, decision.retry_after)
        return decision  # type: ignore[return-value]

    def _acquire(self) -> Permit:
        decision = self._decide()
        if type(decision) is CircuitOpenError:
            raise decision
        return decision  # type: ignore[return-value]

    def _settle(self, permit: Permit, error: BaseException | None) -> None:
        if self._measured is not None:
            self._measured.settle(permit, error)
            return
        core = self._core
        if error is None:
            if permit.trial:
                core.on_success(permit, self._now())
            else:
                core.on_success(permit)
        elif core.is_counted(error):
            core.on_failure(permit, self._now())
        else:
            core.release(permit)
        if core.has_changes:
            self._publish()

    async def _guard_async(self, call: Callable[[], Awaitable[Any]]) -> Any:
        core = self._core
        permit = core.free_permit or self._acquire()
        try:
            result = await call()
        except BaseException as exc:
            self._settle(permit, exc)
            raise
        if permit.trial:
            self._settle(permit, None)
        else:
            core.on_success(permit)
        return result

    def _guard_sync(self, call: Callable[[], Any]) -> Any:
        core = self._core
        permit = core.free_permit or self._acquire()
        try:
            result = call()
        except BaseException as exc:
            self._settle(permit, exc)
            raise
        if permit.trial:
            self._settle(permit, None)
        else:
            core.on_success(permit)
        return result

    def _open(self) -> Callable[[BaseException | None], None]:
        permit = self._core.free_permit or self._acquire()
        return functools.partial(self._settle, permit)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``fn`` (``async def`` or plain) so every call goes through this breaker; the
        wrapper exposes the breaker as ``.breaker``.

        A generator function (plain or async) becomes a generator function whose whole
        iteration is one call: the breaker is asked at the first step (an open breaker raises
        ``CircuitOpenError`` there), an error raised while iterating counts as a failure (and
        propagates), running to the end is a success, and closing it early counts as nothing.

        Raises:
            TypeError: ``fn`` is not callable.
        """
        measured = self._measured
        return decorate(
            fn,
            rule="circuit_breaker",
            around_async=self._guard_async if measured is None else measured.guard_async,
            around_sync=self._guard_sync if measured is None else measured.guard_sync,
            extra={"breaker": self},
            # The written-out fast form is the plain core's; a measured one keeps its own guard.
            wrap_async=self._wrap_async if measured is None else None,
            generators=WholeIteration(self._open),
        )

    def _wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        # The async form, written out rather than through decorate(): no partial per call and
        # no frame between the caller and the refusal (an open breaker's whole cost is this
        # wrapper, one clock read, the core's decision and one raise). The error is made as
        # CircuitOpenError.refusing() makes it, without that classmethod's own call.
        core = self._core
        decide = self._decide
        settle = self._settle
        make_error = CircuitOpenError.__new__
        name = core.name
        clock = self._clock
        current_time = trio.current_time

        async def guarded(*args: Any, **kwargs: Any) -> Any:
            permit = core.free_permit
            if permit is None:
                try:
                    now = current_time()
                except RuntimeError:  # an async function run outside trio
                    now = clock()
                retry_after = core.refusal(now)
                if retry_after is not None:
                    raise make_error(CircuitOpenError, name, retry_after)
                decision = decide()
                if type(decision) is CircuitOpenError:
                    raise decision
                permit = decision  # type: ignore[assignment]
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                settle(permit, exc)  # type: ignore[arg-type]
                raise
            if permit.trial:  # type: ignore[union-attr]
                settle(permit, None)  # type: ignore[arg-type]
            else:
                core.on_success(permit)  # type: ignore[arg-type]
            return result

        return guarded

    @overload
    async def call(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R: ...

    @overload
    async def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...

    async def call(self, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Run ``fn(*args, **kwargs)`` (awaited if it is a coroutine function) through the breaker
        and return its result.

        Raises:
            CircuitOpenError: the breaker refused the call; ``fn`` was not invoked.
            Exception: whatever ``fn`` raised, unchanged.
            TypeError: ``fn`` is a generator function (calling one runs none of it: decorate it
                instead, so that its iteration is guarded).
        """
        _not_a_generator("call", fn)
        measured = self._measured
        if is_async_callable(fn):
            guard = self._guard_async if measured is None else measured.guard_async
            return await guard(lambda: fn(*args, **kwargs))
        return (self._guard_sync if measured is None else measured.guard_sync)(
            lambda: fn(*args, **kwargs)
        )

    def call_sync(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the plain function ``fn(*args, **kwargs)`` through the breaker (see :meth:`call`)."""
        _not_a_generator("call_sync", fn)
        measured = self._measured
        guard = self._guard_sync if measured is None else measured.guard_sync
        result: R = guard(lambda: fn(*args, **kwargs))
        return result

    def _enter(self) -> None:
        core = self._core
        permit = core.free_permit or self._acquire()
        key = _entry_key()
        stack = self._entries.get(key)
        if stack is None:
            self._entries[key] = [permit]
        else:
            stack.append(permit)

    def _exit(self, exc: BaseException | None) -> None:
        key = _entry_key()
        stack = self._entries[key]
        permit = stack.pop()
        if not stack:
            del self._entries[key]
        self._settle(permit, exc)

    async def __aenter__(self) -> CircuitBreaker:
        """Ask the breaker's leave for the body (no checkpoint).

        Raises:
            CircuitOpenError: the breaker refused; the body does not run.
        """
        self._enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Record the body's outcome; its exception, if any, propagates unchanged."""
        self._exit(exc)

    def __enter__(self) -> CircuitBreaker:
        """The synchronous form of :meth:`__aenter__`, for plain code."""
        self._enter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """The synchronous form of :meth:`__aexit__`."""
        self._exit(exc)


def _not_a_generator(method: str, fn: object) -> None:
    kind = generator_kind(fn)
    if kind is not None:
        what = "an async generator function" if kind == "async" else "a generator function"
        raise TypeError(
            f"{method}() runs a function to its result, and {qualname_of(fn)!r} is {what} "
            "(its work happens while it is iterated): decorate it with the breaker instead"
        )
