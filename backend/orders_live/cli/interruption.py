"""Ctrl-C and SIGTERM for the long-running commands (serve, demo, agent, watch, simulate).

The rule: the command stops what it runs, in order, says so in one line, and exits 0. No
``KeyboardInterrupt`` traceback, whenever the signal comes:

- before the event loop runs (imports, the loop's creation): a plain handler, installed
  first thing, only remembers the signal, and the command stops as soon as its loop starts;
- while it runs: the loop's own handler sets the command's ``stop`` event, which the command
  waits on beside its work.

A second Ctrl-C while stopping is remembered too (stopping is bounded: ``Service.stop``).
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from types import FrameType
from typing import Any, TextIO

from orders_live.runtime.supervisor import Supervisor

SIGNALS = (signal.SIGINT, signal.SIGTERM)
Main = Callable[[asyncio.Event], Awaitable[None]]


class Interruption:
    """The signals a command has received; ``run`` runs its main until it ends or one comes."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interruption:
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._remember)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _remember(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum

    async def run(self, main: Main) -> None:
        """``main(stop)``, where ``stop`` is set by SIGINT or SIGTERM (or was, before the loop ran)."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def stopping(signum: int) -> None:
            self.received = signum
            stop.set()

        for signum in SIGNALS:
            loop.add_signal_handler(signum, stopping, signum)
        loop.add_signal_handler(signal.SIGUSR1, dump_stacks)
        try:
            if self.received is not None:
                stop.set()
            await main(stop)
        finally:
            for signum in SIGNALS:  # the plain handler again: a signal while the loop closes is remembered
                loop.remove_signal_handler(signum)
                signal.signal(signum, self._remember)
            loop.remove_signal_handler(signal.SIGUSR1)
            faulthandler.register(signal.SIGUSR1, all_threads=True)


def dump_stacks(out: TextIO | None = None) -> None:
    """SIGUSR1 while the loop runs: every thread's stack, then every task's (where each waits),
    to stderr; a process that does not stop says where it is stuck."""
    out = out or sys.stderr
    faulthandler.dump_traceback(file=out, all_threads=True)
    for task in asyncio.all_tasks():
        print(f"Task {task.get_name()}:", file=out)
        task.print_stack(file=out)
    out.flush()


async def stop_within(tasks: Supervisor, within: float, what: str) -> None:
    """``tasks.stop()``, bounded: tasks still running after ``within`` seconds are named, with
    where each waits, and the stop goes on without them."""
    running = tasks.running
    try:
        async with asyncio.timeout(within):
            await tasks.stop()
    except TimeoutError:
        stuck = [task for task in running if not task.done()]
        logging.getLogger("orders_live").warning(
            "stopping: %s took over %.0f s; going on without %s",
            what,
            within,
            ", ".join(task.get_name() for task in stuck),
        )
        for task in stuck:
            task.print_stack(file=sys.stderr)


async def until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event, name: str) -> None:
    """Run ``work`` until it ends or ``stop`` is set; then cancel it and wait for it to finish."""
    task = asyncio.create_task(work, name=name)
    stopping = asyncio.create_task(stop.wait(), name=f"{name}.stop")
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(stopping, return_exceptions=True)
        try:
            await task
        except asyncio.CancelledError:
            if not stop.is_set():
                raise


def run_command(
    main: Main,
    runner: Callable[[Coroutine[Any, Any, None]], None],
    stopped: str,
    out: TextIO | None = None,
) -> None:
    """Run ``main`` on ``runner`` (asyncio's or uvloop's) with the signal rule above; print
    ``stopped`` (to ``out``, else log it) once, if a signal stopped it."""
    with Interruption() as interruption:
        runner(interruption.run(main))
        if interruption.received is None:
            return
        if out is not None:
            print(stopped, file=out, flush=True)
        else:
            logging.getLogger("orders_live").info(stopped)
