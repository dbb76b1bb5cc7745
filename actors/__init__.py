"""actors: a small, fast actor runtime for trio.

An actor is a trio task that handles the messages of its bounded mailbox one at a time; an
:class:`ActorRef` is the only way to reach it (``tell``, ``send``, ``ask``). An
:class:`ActorSystem` owns the root nursery and a registry of names::

    async with actors.ActorSystem() as system:
        ref = await system.spawn(Greeter, name="greeter")
        assert await ref.ask("world", timeout=1.0) == "hello world"

Every request gets exactly one outcome: a reply, the handler's exception, :class:`AskTimeout`,
:class:`ActorStopped` or :class:`MailboxFull`. Nothing hangs, nothing is answered twice.
``trio.Cancelled``, ``KeyboardInterrupt`` and other ``BaseException``\\ s that are not
``Exception``\\ s are never turned into a crash: they propagate.

Supervision contract (the seam for supervisors built outside this package)
--------------------------------------------------------------------------
``await system.spawn(factory, *args, supervisor=hook, **kwargs)`` where ``hook`` is any object
with a synchronous, non-blocking ``hook.child_failed(ref, error) -> None``
(:class:`SupervisorHook`).

1. Crash. When ``receive`` raises an ``Exception`` ``error``: the request in hand (if an ask)
   is answered with ``error``; the instance is discarded (its ``on_stop`` is *not* called);
   ``statistics().failures`` grows by one. Then:

   - with ``supervisor=None``: the actor restarts in place at once: a fresh instance from the
     same factory and arguments, ``on_restart(error)`` on it, state back to ``RUNNING``.
     If the factory or ``on_restart`` raises, the actor stops with that error as reason
     (``Down.reason``, ``ActorStopped.reason``, ``statistics().stop_reason``).
   - with a hook: the state becomes ``SUSPENDED`` and ``hook.child_failed(ref, error)`` is
     called once, synchronously, from the actor's task. While ``SUSPENDED`` there is no
     instance: user messages stay queued (not served, not lost), ``tell``/``send``/``ask``
     keep queueing under the mailbox's policy, asks keep their deadlines (an ask whose
     deadline passes gets :class:`AskTimeout` and leaves the mailbox), ``Down`` messages wait
     for the next instance, and ``stop``/``restart`` are served. If ``child_failed`` raises an
     ``Exception``, the actor stops with it as reason.

2. ``await system.restart(ref, grace=5.0)`` makes a fresh instance from the same factory and
   arguments with the same mailbox and runs ``on_restart(error)`` (``error`` = the crash, or
   ``None`` when a running actor is restarted), returning once that finished; the ref is
   unchanged and ``statistics().restarts`` grows by one. On a running actor, the running
   instance is first stopped as by ``stop`` (the message in hand may finish for ``grace``
   seconds, then is cancelled and its ask gets :class:`ActorStopped`; ``on_stop(None)`` runs).
   If the factory, ``on_restart`` or that ``on_stop`` raises, ``restart`` raises that error
   and the actor is left ``SUSPENDED`` if it has a hook (the hook is *not* called again), or
   ``STOPPED`` with that reason if it has none. ``restart`` of a stopping or stopped actor
   raises :class:`ActorStopped`.

3. ``await system.stop(ref, grace=5.0)`` works in every state: the message in hand (if any)
   may finish for ``grace`` seconds, then is cancelled; ``on_stop(None)`` runs if an instance
   exists; every queued or in-flight request gets :class:`ActorStopped`; watchers get
   ``Down(ref, reason)``; the name is freed. It is idempotent and returns once ``STOPPED``.

4. Observing: ``ref.statistics()`` gives ``state`` (:class:`ActorState`: ``STARTING``,
   ``RUNNING``, ``SUSPENDED``, ``STOPPING``, ``STOPPED``), ``stop_reason``, ``queued``,
   ``in_flight``, ``processed``, ``failures``, ``restarts``. ``context.watch(ref)`` on a
   supervisor's own actor delivers ``Down`` when a child stops; ``ref.is_alive`` is a cheap
   check.

5. Starting: ``spawn`` returns once ``on_start`` finished; if it (or the factory) raises,
   ``spawn`` raises that error and nothing stays registered: a supervisor sees the failure of
   a child's start directly.
"""

from ._actor import Actor as Actor
from ._actor import ActorContext as ActorContext
from ._errors import ActorError as ActorError
from ._errors import ActorNotFound as ActorNotFound
from ._errors import ActorStopped as ActorStopped
from ._errors import AskTimeout as AskTimeout
from ._errors import MailboxFull as MailboxFull
from ._errors import NameTaken as NameTaken
from ._hook import SupervisorHook as SupervisorHook
from ._messages import ActorState as ActorState
from ._messages import ActorStatistics as ActorStatistics
from ._messages import Down as Down
from ._messages import Overflow as Overflow
from ._messages import SystemStatistics as SystemStatistics
from ._ref import ActorRef as ActorRef
from ._system import ActorSystem as ActorSystem
from ._system import run as run

__all__ = [
    "Actor",
    "ActorContext",
    "ActorError",
    "ActorNotFound",
    "ActorRef",
    "ActorState",
    "ActorStatistics",
    "ActorStopped",
    "ActorSystem",
    "AskTimeout",
    "Down",
    "MailboxFull",
    "NameTaken",
    "Overflow",
    "SupervisorHook",
    "SystemStatistics",
    "run",
]
