"""A supervision tree guarding a real HTTP client against a flaky server.

The service actor ``prices`` owns an :class:`httpx.AsyncClient` (opened in ``on_start``, closed
in ``on_stop``) and fetches ``/price/<n>`` from a small HTTP/1.1 server that this script starts
on ``127.0.0.1`` (an ephemeral port; written with trio and h11). The server follows a schedule:

1. **healthy**: quick ``200`` answers;
2. **errors**: every request is answered ``500``;
3. **slow**: answers take 0.5 s, longer than the service's 0.25 s request timeout;
4. **outage**: the server closes its listening socket: connections are refused;
5. **recovered**: quick ``200`` answers again, on the same port.

The service's rules: a request has 0.25 s in all; a failed attempt is retried once; three failures
in a row open the breaker for 0.3 s; two concurrent requests and one queued, the rest refused;
refused and failed requests are answered from a cache of the last good answer. A failed request
crashes the service actor (its handler raised): its supervisor restarts it, or, while the breaker
is open, *parks* it and restarts it on probation when the breaker turns half-open.

Four callers ask for prices every 40 ms. The script prints what the supervisor saw (from the
tree's events): the breaker opening and closing, the cache answering, the actor parked and
restarted on probation, and a summary. It runs on the real clock for about 4 seconds and talks only
to ``127.0.0.1``.

Run it with ``python examples/http_service.py`` (needs ``httpx``: ``pip install
'trio-supervisor[examples]'``).
"""

from __future__ import annotations

import collections
import enum
import functools
import json
import random
import ssl
from collections.abc import Callable
from typing import Any, Final

import attrs
import h11
import httpx
import trio

import actors
from supervisor import (
    BreakerSpec,
    BulkheadFullError,
    BulkheadSpec,
    ChildCrashed,
    ChildParked,
    ChildRestarted,
    CircuitOpenError,
    CircuitState,
    CircuitStateChange,
    EventBus,
    FallbackSpec,
    FallbackUsed,
    Refusal,
    RequestRefused,
    RestartBackoff,
    RetryScheduled,
    RetrySpec,
    ServiceSpec,
    SupervisorSpec,
    run_tree,
)

CALLERS: Final = 4
"""Concurrent callers of the service."""
PACE: Final = 0.04
"""Seconds each caller waits between its requests."""
ITEMS: Final = 3
"""Distinct prices asked for (caller ``i`` asks for item ``i % ITEMS + 1``)."""
REQUEST_TIMEOUT: Final = 0.25
"""Seconds one request may take in all (attempts and retry delay included)."""
SLOW_ANSWER: Final = 0.5
"""Seconds the server takes to answer in the slow phase (more than ``REQUEST_TIMEOUT``)."""


# -- the flaky server -----------------------------------------------------------------------------


class Behaviour(enum.Enum):
    """How the server answers during a phase."""

    HEALTHY = "healthy"
    ERRORS = "errors"
    SLOW = "slow"
    OUTAGE = "outage"


@attrs.frozen(kw_only=True)
class Phase:
    """One phase of the server's schedule."""

    name: str
    """Shown in the log."""
    behaviour: Behaviour
    """How the server answers."""
    duration: float
    """Seconds the phase lasts."""
    note: str
    """What a client sees, for the log."""


SCHEDULE: Final = (
    Phase(name="healthy", behaviour=Behaviour.HEALTHY, duration=0.8, note="200 in a few ms"),
    Phase(name="errors", behaviour=Behaviour.ERRORS, duration=0.6, note="every request gets 500"),
    Phase(
        name="slow",
        behaviour=Behaviour.SLOW,
        duration=0.6,
        note=f"answers take {SLOW_ANSWER}s, more than the {REQUEST_TIMEOUT}s timeout",
    ),
    Phase(name="outage", behaviour=Behaviour.OUTAGE, duration=0.6, note="connection refused"),
    Phase(name="recovered", behaviour=Behaviour.HEALTHY, duration=0.8, note="200 in a few ms"),
)
"""The server's schedule: 3.4 seconds."""


class FlakyServer:
    """A small HTTP/1.1 server on ``127.0.0.1`` (trio + h11) that follows a schedule of phases.

    ``GET /price/<n>`` is answered ``{"item": n, "price": ..., "served": k}`` with ``200`` while
    healthy, ``500`` during errors, after :data:`SLOW_ANSWER` seconds while slow; during an outage
    the listening socket is closed (connections are refused) and it is opened again on the same
    port afterwards. Any other path gets ``404``.
    """

    def __init__(self, schedule: tuple[Phase, ...], on_phase: Callable[[Phase], None]) -> None:
        self.schedule = schedule
        self.phase = schedule[0]
        self.port = 0
        self.answered: collections.Counter[int] = collections.Counter()
        """Responses sent, by status code."""
        self._on_phase = on_phase

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, report the port (for ``nursery.start``), then play the schedule; return at its
        end with the listener closed. Cancellation closes the listener and every connection."""
        serving: trio.CancelScope | None = None
        async with trio.open_nursery() as nursery:
            for index, phase in enumerate(self.schedule):
                self.phase = phase
                if phase.behaviour is Behaviour.OUTAGE:
                    if serving is not None:
                        serving.cancel()
                        serving = None
                elif serving is None:
                    serving = await nursery.start(self._serve)
                if index == 0:
                    task_status.started(self.port)
                self._on_phase(phase)
                await trio.sleep(phase.duration)
            if serving is not None:
                serving.cancel()

    async def _serve(
        self, *, task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED
    ) -> None:
        # The first time on a free ephemeral port, later on the same one again.
        listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        try:
            with trio.CancelScope() as scope:
                task_status.started(scope)
                # Connection handlers run in serve_listeners' own nursery: cancelled with it.
                await trio.serve_listeners(self._connection, listeners)
        finally:
            with trio.CancelScope(shield=True):
                for listener in listeners:
                    await listener.aclose()

    async def _connection(self, stream: trio.SocketStream) -> None:
        connection = h11.Connection(h11.SERVER)
        try:
            while True:  # one request after another on a keep-alive connection, until it ends
                target = await self._read_request(connection, stream)
                if target is None:
                    return
                status, body = await self._answer(target)
                await self._send(connection, stream, status, body)
                if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                    return
                connection.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            return  # the client went away (it gave up on a slow answer, say)
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    @staticmethod
    async def _read_request(connection: h11.Connection, stream: trio.SocketStream) -> str | None:
        # The target of the next complete request, or None once the client closed.
        target: str | None = None
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Request):
                target = event.target.decode("ascii", "replace")
            elif isinstance(event, h11.EndOfMessage):
                return target
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _answer(self, target: str) -> tuple[int, dict[str, Any]]:
        behaviour = self.phase.behaviour
        prefix, _, item = target.partition("/price/")
        if prefix or not item.isdigit():
            return 404, {"error": f"no such path {target!r}"}
        if behaviour is Behaviour.ERRORS:
            return 500, {"error": "internal server error"}
        if behaviour is Behaviour.SLOW:
            await trio.sleep(SLOW_ANSWER)
        served = self.answered[200] + 1  # this is the server's n-th price
        return 200, {"item": int(item), "price": 10 + int(item), "served": served}

    async def _send(
        self,
        connection: h11.Connection,
        stream: trio.SocketStream,
        status: int,
        payload: dict[str, Any],
    ) -> None:
        body = json.dumps(payload).encode()
        headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
        for event in (
            h11.Response(status_code=status, headers=headers),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            data = connection.send(event)
            if data:
                await stream.send_all(data)
        self.answered[status] += 1


# -- the service actor ----------------------------------------------------------------------------


@functools.cache
def tls_settings() -> ssl.SSLContext:
    """The TLS settings every client shares: loading the CA certificates takes tens of
    milliseconds, which a restarted client should not pay again."""
    return ssl.create_default_context()


class ServerError(Exception):
    """The server answered with a 5xx status."""

    def __init__(self, status: int, path: str) -> None:
        super().__init__(f"HTTP {status} for {path}")
        self.status = status


class PriceClient(actors.Actor[str]):
    """The service actor: owns one :class:`httpx.AsyncClient` for the price server.

    ``receive(path)`` GETs ``path`` and returns the decoded JSON answer; a 5xx status raises
    :class:`ServerError`, and a connection error raises httpx's own error. Either is a crash of
    this instance: the runtime discards it without calling ``on_stop``, so the instance closes its
    client itself once its last request in hand has finished.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._client: httpx.AsyncClient | None = None
        self._in_hand = 0
        self._crashed = False

    async def on_start(self) -> None:
        """Open the client (also on every restart, through ``on_restart``)."""
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=2.0, verify=tls_settings())

    async def on_stop(self, reason: BaseException | None) -> None:
        """Close the client."""
        await self._close()

    async def receive(self, message: str) -> Any:
        """GET ``message`` (a path) and return the JSON answer.

        Raises:
            ServerError: a 5xx status.
            httpx.HTTPError: the request failed (connection refused, ...).

        Cancellation (the request's deadline passed): the HTTP request is abandoned and its
        connection closed by httpx; the instance stays up.
        """
        client = self._client
        if client is None:
            raise RuntimeError("the client is not open")
        self._in_hand += 1
        try:
            return await self._get(client, message)
        except Exception:
            self._crashed = True
            raise
        finally:
            self._in_hand -= 1
            if self._crashed and self._in_hand == 0:
                await self._close()

    @staticmethod
    async def _get(client: httpx.AsyncClient, path: str) -> Any:
        response = await client.get(path)
        if response.status_code >= 500:
            raise ServerError(response.status_code, path)
        response.raise_for_status()
        return response.json()

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with trio.CancelScope(shield=True):
                await client.aclose()


# -- the story, told from the events --------------------------------------------------------------


def _why(error: BaseException) -> str:
    """A short reason for the log."""
    if isinstance(error, ServerError):
        return f"HTTP {error.status}"
    if isinstance(error, httpx.ConnectError):
        return "connection refused"
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, CircuitOpenError):
        return "circuit open"
    if isinstance(error, BulkheadFullError):
        return "bulkhead full"
    return type(error).__name__


@attrs.frozen(kw_only=True)
class Summary:
    """What happened in one run of :func:`main`."""

    requests: int
    """Requests the callers sent."""
    answered: int
    """Requests that got an answer (from the server or from the cache)."""
    errors: int
    """Requests that got an error (a refused or failed one with nothing cached)."""
    from_cache: int
    """Answers given by the cache fallback."""
    retries: int
    """Retries scheduled."""
    refused: dict[str, int]
    """Requests refused on the caller's side, by rule."""
    breaker_opened: int
    """Times the breaker opened (from closed or half-open)."""
    breaker_closed: int
    """Times it closed again after trial requests succeeded."""
    final_state: CircuitState
    """The breaker's state at the end."""
    crashes: int
    """Crashes of the service actor."""
    restarts: int
    """Restarts after a crash, while the breaker was not open."""
    parked: int
    """Times the crashed actor was parked because its breaker was open."""
    probation: int
    """Restarts on probation (the breaker turned half-open)."""
    server_statuses: dict[int, int]
    """Responses the server sent, by status."""


@attrs.define
class _Story:
    """Tallies the events and prints the lines worth reading."""

    out: Callable[[str], None]
    start: float = 0.0
    requests: int = 0
    answered: int = 0
    errors: int = 0
    from_cache: int = 0
    retries: int = 0
    refused: collections.Counter[str] = attrs.field(factory=collections.Counter)
    opened: int = 0
    closed: int = 0
    crashes: int = 0
    restarts: int = 0
    parked: int = 0
    probation: int = 0
    last_crash: str = ""
    fallback_told: bool = False
    bulkhead_told: bool = False
    state: CircuitState = CircuitState.CLOSED

    def say(self, text: str) -> None:
        self.out(f"[{trio.current_time() - self.start:5.2f}s] {text}")

    def on_phase(self, phase: Phase) -> None:
        self.say(f"-- server: {phase.name} ({phase.note})")
        self.fallback_told = self.bulkhead_told = False

    def on_event(self, event: object) -> None:
        """The bus listener: synchronous and quick."""
        if isinstance(event, CircuitStateChange):
            self._breaker(event)
        elif isinstance(event, FallbackUsed):
            self.from_cache += 1
            if not self.fallback_told:
                self.fallback_told = True
                self.say(f"cache answers instead ({_why(event.cause)})")
        elif isinstance(event, RequestRefused):
            self.refused[event.refusal.value] += 1
            if event.refusal is Refusal.BULKHEAD_FULL and not self.bulkhead_told:
                self.bulkhead_told = True
                self.say("bulkhead full: a request is refused without waiting")
        elif isinstance(event, RetryScheduled):
            self.retries += 1
        elif isinstance(event, ChildCrashed):
            self.crashes += 1
            self.last_crash = _why(event.error)
        elif isinstance(event, ChildParked):
            self.parked += 1
            self.say(
                f"actor crashed ({self.last_crash}) while the breaker is open: parked "
                f"until {event.until - self.start:.2f}s",
            )
        elif isinstance(event, ChildRestarted):
            if event.probation:
                self.probation += 1
                self.say("actor restarted on probation (breaker half-open)")
            else:
                self.restarts += 1
                self.say(f"actor crashed ({self.last_crash}): restarted")

    def _breaker(self, event: CircuitStateChange) -> None:
        self.state = event.new_state
        if event.new_state is CircuitState.OPEN:
            self.opened += 1
            self.fallback_told = False
            self.say(f"breaker OPEN ({event.reason.value.replace('_', ' ')})")
        elif event.new_state is CircuitState.HALF_OPEN:
            self.say("breaker half-open: one trial request at a time")
        else:
            self.closed += 1
            self.say("breaker CLOSED again: the server answers")


def tree_spec(base_url: str) -> SupervisorSpec:
    """The supervision tree: one guarded service, ``shop/prices``."""
    prices = ServiceSpec(
        name="prices",
        factory=PriceClient,
        args=(base_url,),
        timeout=REQUEST_TIMEOUT,
        breaker=BreakerSpec(failure_threshold=3, success_threshold=2, timeout=0.3),
        retry=RetrySpec(max_attempts=2, initial_delay=0.02, max_delay=0.05),
        bulkhead=BulkheadSpec(max_concurrent=2, max_queued=1),
        fallback=FallbackSpec(cache_ttl=60.0),
        shutdown=1.0,
    )
    return SupervisorSpec(
        name="shop",
        children=[prices],
        max_restarts=20,
        within=5.0,
        backoff=RestartBackoff(initial_delay=0.01, max_delay=0.05),
    )


async def _caller(index: int, call: Callable[[str], Any], story: _Story, until: float) -> None:
    path = f"/price/{index % ITEMS + 1}"
    await trio.sleep(index * PACE / CALLERS)  # spread out: no contention while all is well
    for _ in range(int((until - trio.current_time()) / PACE) + 1):  # bounded; ends at `until`
        if trio.current_time() >= until:
            return
        story.requests += 1
        try:
            await call(path)
        except Exception:
            story.errors += 1
        else:
            story.answered += 1
        await trio.sleep(PACE)


async def main(
    out: Callable[[str], None] = print,
    *,
    schedule: tuple[Phase, ...] = SCHEDULE,
    seed: int = 1,
) -> Summary:
    """Run the story and return its :class:`Summary` (lines go to ``out``). Real clock."""
    tls_settings()  # loaded once, before the clock of the story starts
    story = _Story(out=out, start=trio.current_time())
    bus: EventBus[Any] = EventBus()
    bus.add_listener(story.on_event)
    until = story.start + sum(phase.duration for phase in schedule)
    async with trio.open_nursery() as nursery:
        server = FlakyServer(schedule, story.on_phase)
        port: int = await nursery.start(server.run)
        spec = tree_spec(f"http://127.0.0.1:{port}")
        async with run_tree(spec, events=bus, rng=random.Random(seed)) as tree:
            prices = tree.service("prices")
            async with trio.open_nursery() as callers:
                for index in range(CALLERS):
                    callers.start_soon(_caller, index, prices.call, story, until)
            breaker = prices.breaker
            final = breaker.state if breaker is not None else CircuitState.CLOSED
        nursery.cancel_scope.cancel()
    summary = Summary(
        requests=story.requests,
        answered=story.answered,
        errors=story.errors,
        from_cache=story.from_cache,
        retries=story.retries,
        refused=dict(story.refused),
        breaker_opened=story.opened,
        breaker_closed=story.closed,
        final_state=final,
        crashes=story.crashes,
        restarts=story.restarts,
        parked=story.parked,
        probation=story.probation,
        server_statuses=dict(server.answered),
    )
    _print_summary(summary, out)
    return summary


def _print_summary(summary: Summary, out: Callable[[str], None]) -> None:
    refused = ", ".join(f"{count} {rule}" for rule, count in sorted(summary.refused.items()))
    statuses = ", ".join(
        f"{count}x {status}" for status, count in sorted(summary.server_statuses.items())
    )
    out("summary")
    out(
        f"  requests: {summary.requests}: {summary.answered} answered "
        f"({summary.from_cache} from the cache), {summary.errors} errors"
    )
    out(f"  retries: {summary.retries}; refused on the caller's side: {refused or 'none'}")
    out(
        f"  breaker: opened {summary.breaker_opened}x, closed again {summary.breaker_closed}x, "
        f"now {summary.final_state.value}"
    )
    out(
        f"  actor: {summary.crashes} crashes, {summary.restarts} restarts, "
        f"{summary.parked}x parked, {summary.probation} probation restarts"
    )
    out(f"  server sent: {statuses or 'nothing'}")


if __name__ == "__main__":
    trio.run(main)
