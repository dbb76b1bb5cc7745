"""actors: a small, fast actor runtime for trio.

An actor is a trio task that handles the messages of its bounded mailbox one at a time (or up
to ``max_concurrency`` at a time, see below); an :class:`ActorRef` is the only way to reach it
(``tell``, ``send``, ``ask``). An
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
   ``statistics().failures`` grows by one. With ``max_concurrency`` > 1 (see 6), no new
   message starts on the discarded instance, and the *other* handlers in flight (which keep
   their reference to it) may finish; another error of that instance meanwhile only answers
   its own ask (it is not counted again); what follows below happens once they are all done,
   with the first error. Then:

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

   A crash while a stop, restart or suspension is already pending only discards the instance
   (and counts): the pending request decides what happens next; the hook is not called.

2. ``await system.restart(ref, grace=5.0)`` makes a fresh instance from the same factory and
   arguments with the same mailbox and runs ``on_restart(error)`` (``error`` = the crash, or
   ``None`` when a running actor is restarted or one suspended by ``suspend`` that did not
   crash), returning once that finished; the ref is unchanged and ``statistics().restarts``
   grows by one. On a running actor, the running instance is first stopped as by ``stop``
   (see 3: ``grace`` bounds the messages in hand and ``on_stop(None)`` together); ``on_restart``
   runs to its end (unless a ``stop`` overtakes it).
   If the factory, ``on_restart`` or that ``on_stop`` raises, ``restart`` raises that error
   and the actor is left ``SUSPENDED`` if it has a hook (the hook is *not* called again), or
   ``STOPPED`` with that reason if it has none. ``restart`` of a stopping or stopped actor
   raises :class:`ActorStopped` (also when a stop overtakes the restart). Concurrent calls
   share one restart.

3. ``await system.stop(ref, grace=5.0)`` works in every state. ``grace`` bounds the whole
   termination of the instance, as OTP's ``shutdown`` does: one deadline, ``grace`` seconds
   after the stop was asked for, for the messages in hand (if any) and then ``on_stop(None)``
   (if an instance exists) together; what still runs at the deadline is cancelled. ``None``
   waits as long as they take; ``0`` cancels at once (``on_stop`` starts in a cancelled scope:
   it may still do non-blocking cleanup). An ``on_stop`` cut off this way does not change the
   stop reason; it is counted in ``statistics().stop_hooks_cut_off``. Then every queued or
   in-flight request gets :class:`ActorStopped`; watchers get ``Down(ref, reason)``; the name
   is freed. It is idempotent (a second call may shorten the deadline) and returns once
   ``STOPPED``.

4. ``await system.suspend(ref, grace=5.0)`` stops the current instance as ``stop`` does (one
   deadline for the messages in hand and ``on_stop(None)``; the asks in hand get
   :class:`ActorStopped` if it runs out) but keeps the slot: the actor is
   ``SUSPENDED`` exactly as after a crash under a hook (mailbox and queued messages kept, not
   served; the ref valid; asks keep queueing and keep their deadlines; ``Down`` waits), and
   returns then. The hook is not called, not even if the instance crashes during the grace.
   A later ``restart`` makes the next instance (``on_restart(None)``, or the crash error if
   it crashed meanwhile). Suspending a ``SUSPENDED`` actor does nothing; suspending a
   stopping or stopped actor raises :class:`ActorStopped` (also if a stop overtakes the
   suspension); if ``on_stop`` raises, ``suspend`` raises that error and the actor is
   ``SUSPENDED`` all the same. A ``restart`` asked for while a suspension is pending waits
   for it and then restarts, and the other way round. This is the tool of OTP's
   ``one_for_all``/``rest_for_one``: suspend the other children in reverse start order,
   keeping their mailboxes, then restart each in start order, one after the other.

5. Observing: ``ref.statistics()`` gives ``state`` (:class:`ActorState`: ``STARTING``,
   ``RUNNING``, ``SUSPENDED``, ``STOPPING``, ``STOPPED``), ``stop_reason``, ``queued``,
   ``in_flight``, ``max_concurrency``, ``processed``, ``failures``, ``restarts``,
   ``stop_hooks_cut_off``.
   ``context.watch(ref)`` on a supervisor's own actor delivers ``Down`` when a child stops;
   ``ref.is_alive`` is a cheap check; ``ref.max_concurrency`` is the spawn option.

6. Concurrency: ``spawn(..., max_concurrency=n)`` (an int >= 1, default 1) is how many
   messages one instance may handle at the same time. With 1, the classic actor: the actor's
   own task runs each handler inline, one at a time (no extra task, no nursery). With n > 1
   (e.g. a service whose bulkhead allows n concurrent requests on one client): the actor's
   task opens a nursery (inside the actor's lifetime) and runs each message's handler in a
   task of its own, at most n at a time, taken from the mailbox in FIFO order (the ``Down``
   messages of the system lane first); message n + 1 waits in the mailbox until a handler
   finishes. Every per-request rule holds for each of them: deadlines (load shedding of
   expired requests, a handler cancelled at its ask's deadline), abandoned requests skipped,
   exactly one outcome per ask. A stop, restart or suspension gives ``grace`` to all the
   handlers in flight, and ``in_flight`` counts them all. A ``BaseException`` that is not an
   ``Exception`` out of one handler cancels the others and leaves as itself.

7. Starting: ``spawn`` returns once ``on_start`` finished; if it (or the factory) raises,
   ``spawn`` raises that error and nothing stays registered: a supervisor sees the failure of
   a child's start directly.

8. Shutting down: leaving ``async with ActorSystem()`` in any way (also cancelled from an
   enclosing scope, or with ``KeyboardInterrupt``) stops the live actors in reverse start
   order, each as by ``stop`` with the system's ``shutdown_grace``, and only then lets the
   exception or cancellation go on (see :class:`ActorSystem`). The actors run shielded from
   the caller's cancel scopes, so a deadline around the block cannot kill them before their
   ``on_stop`` ran; the shutdown stays bounded by the graces.
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
