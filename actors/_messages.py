"""Value objects of the actor runtime: the overflow policy, lifecycle states, ``Down`` and the
statistics snapshots."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ._ref import ActorRef

__all__ = ["ActorState", "ActorStatistics", "Down", "Overflow", "SystemStatistics"]


class Overflow(enum.Enum):
    """What a full mailbox does with one more user message.

    - ``WAIT``: backpressure. ``send``/``ask`` wait for room (first come, first served);
      ``tell`` cannot wait, so it raises :class:`MailboxFull`.
    - ``REJECT``: ``tell``/``send``/``ask`` raise :class:`MailboxFull` at once.
    - ``DROP_OLDEST``: the oldest queued message is dropped to make room; if it was an ``ask``,
      that ask is answered with :class:`MailboxFull`.
    """

    WAIT = "wait"
    REJECT = "reject"
    DROP_OLDEST = "drop_oldest"

    @classmethod
    def convert(cls, value: Overflow | str) -> Overflow:
        """Return ``value`` as an :class:`Overflow`, accepting the lowercase value strings.

        Raises:
            ValueError: ``value`` is neither a member nor one of ``"wait"``, ``"reject"``,
                ``"drop_oldest"``; the message names the value and the valid choices.
        """
        if isinstance(value, Overflow):
            return value
        for member in cls:
            if value == member.value:
                return member
        choices = ", ".join(repr(member.value) for member in cls)
        raise ValueError(f"`overflow` must be one of {choices} (got {value!r})")


class ActorState(enum.Enum):
    """Where an actor is in its life.

    - ``STARTING``: its instance is being made (``on_start`` or ``on_restart`` runs).
    - ``RUNNING``: it serves its mailbox.
    - ``SUSPENDED``: it crashed under a supervisor hook, or was suspended by
      ``ActorSystem.suspend``, and waits for ``restart`` or ``stop``; it has no instance, user
      messages stay queued, control messages (stop, restart) are still served.
    - ``STOPPING``: a stop was requested; no new message is accepted.
    - ``STOPPED``: final. Every call on its ref raises :class:`ActorStopped`.
    """

    STARTING = "starting"
    RUNNING = "running"
    SUSPENDED = "suspended"
    STOPPING = "stopping"
    STOPPED = "stopped"


@attrs.frozen(kw_only=True)
class Down:
    """Delivered to a watcher's ``receive`` when an actor it watches has stopped."""

    ref: ActorRef[Any]
    """The actor that stopped."""
    reason: BaseException | None
    """``None`` for a normal stop, else the exception that stopped it."""


@attrs.frozen(kw_only=True)
class ActorStatistics:
    """A snapshot of one actor, as ``ActorRef.statistics()`` returns it."""

    name: str
    """The actor's registered name."""
    state: ActorState
    """Its lifecycle state."""
    queued: int
    """User messages in the mailbox (not counting ``waiting_senders``)."""
    waiting_senders: int
    """``send``/``ask`` calls blocked on a full ``WAIT`` mailbox."""
    in_flight: int
    """Messages in hand now: 0 or 1 with ``max_concurrency`` 1, up to ``max_concurrency``
    otherwise (after a crash, the handlers of the discarded instance still running count)."""
    max_concurrency: int
    """How many messages one instance may handle at the same time (a ``spawn`` option)."""
    processed: int
    """Messages handled so far (with a reply, an error or a deadline cancellation)."""
    failures: int
    """Crashes so far (exceptions out of ``receive``)."""
    restarts: int
    """Successful restarts so far."""
    stop_hooks_cut_off: int
    """``on_stop`` calls cancelled at their grace deadline so far (a stop, restart or suspension
    whose ``grace`` ran out before ``on_stop`` finished; the stop reason is unchanged by it)."""
    mailbox_size: int
    """The mailbox's capacity."""
    overflow: Overflow
    """The mailbox's overflow policy."""
    stop_reason: BaseException | None
    """Once ``STOPPED``: ``None`` for a normal stop, else the exception that stopped it."""


@attrs.frozen(kw_only=True)
class SystemStatistics:
    """A snapshot of an :class:`ActorSystem`."""

    live: int
    """Actors started and not yet stopped."""
    by_state: dict[ActorState, int]
    """How many live actors are in each state (states with none are left out)."""
    spawned: int
    """Actors successfully spawned since the system opened."""
    closed: bool
    """True once the system is shutting down or shut."""
