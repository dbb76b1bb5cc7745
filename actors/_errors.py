"""The error hierarchy of the actor runtime.

Every error the runtime raises on purpose derives from :class:`ActorError`; where a builtin fits,
the error also inherits it (``AskTimeout`` is a ``TimeoutError``, ``NameTaken`` a ``ValueError``,
``ActorNotFound`` a ``KeyError``), so code that knows nothing of actors can still catch it.
"""

from __future__ import annotations

__all__ = [
    "ActorError",
    "ActorNotFound",
    "ActorStopped",
    "AskTimeout",
    "MailboxFull",
    "NameTaken",
]


class ActorError(Exception):
    """Root of every error raised by the actor runtime."""


class MailboxFull(ActorError):
    """A message found no room in a bounded mailbox.

    Raised by ``tell`` on a full mailbox (policies ``WAIT`` and ``REJECT``), by ``send``/``ask``
    with ``REJECT``, and delivered to an ``ask`` whose queued request was dropped by
    ``DROP_OLDEST``.

    Attributes:
        name: the actor's name.
        capacity: the mailbox's size.
    """

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.capacity = capacity
        super().__init__(f"mailbox of actor {name!r} is full ({capacity} queued)")


class ActorStopped(ActorError):
    """The actor is stopped, or stopped while the request was queued or in flight.

    Attributes:
        name: the actor's name.
        reason: ``None`` for a normal stop, else the exception that stopped it.
    """

    def __init__(self, name: str, reason: BaseException | None) -> None:
        self.name = name
        self.reason = reason
        detail = "" if reason is None else f" (reason: {reason!r})"
        super().__init__(f"actor {name!r} is stopped{detail}")


class AskTimeout(ActorError, TimeoutError):
    """An ``ask`` got no reply within its ``timeout``.

    Attributes:
        name: the actor's name.
        timeout: the ``timeout`` the ask was given, in seconds.
    """

    def __init__(self, name: str, timeout: float) -> None:
        self.name = name
        self.timeout = timeout
        super().__init__(f"ask to actor {name!r} timed out after {timeout}s")


class NameTaken(ActorError, ValueError):
    """``spawn`` was given a name a live actor of the same system already has.

    Attributes:
        name: the name.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"`name` {name!r} is already taken by a live actor")


class ActorNotFound(ActorError, KeyError):
    """``lookup`` found no live actor of that name.

    Attributes:
        name: the name looked up.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no live actor named {name!r}")

    def __str__(self) -> str:
        # KeyError renders its argument with repr(); the message reads better as it is.
        return str(self.args[0])
