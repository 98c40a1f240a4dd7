"""A last resort for a stop that does not finish: the process ends anyway, and says why.

Once ``nazorat serve``/``run`` is stopping (SIGTERM/SIGINT or a fatal task failure), every
task gets the supervisor's grace period, then is cancelled, and the event loop is torn
down. Should any of that hang (a task that swallows its cancellation, a thread that never
returns, a library's shutdown that waits forever), the orchestrator would see a process
that neither serves nor exits. ``ExitWatchdog.arm`` starts a daemon thread that, if the
process is still alive ``after_s`` later, logs CRITICAL, writes every thread's stack and
every asyncio task's stack to stderr (so the hang can be diagnosed from the log), and ends
the process with status 1 (a stop that hung is not a clean stop). The command line owns
it (``nazorat.cli``: created before the event loop, disarmed once the loop has finished);
``serve`` arms it when the stop begins. ``serve`` run in-process without one (the tests)
has none.
"""

from __future__ import annotations

import asyncio
import faulthandler
import io
import logging
import os
import sys
import threading
from collections.abc import Callable

log = logging.getLogger("nazorat.exit_watchdog")


class ExitWatchdog:
    def __init__(self, *, before_exit: Callable[[], None] | None = None) -> None:
        self._before_exit = before_exit  # e.g. stopping the embedded services of `nazorat run`
        self._armed = False
        self._disarmed = threading.Event()
        self._lock = threading.Lock()

    def arm(self, after_s: float, loop: asyncio.AbstractEventLoop) -> None:
        """Start the countdown (once; later calls do nothing) for the process that runs ``loop``."""
        with self._lock:
            if self._armed or self._disarmed.is_set():
                return
            self._armed = True
        threading.Thread(target=self._expire, args=(after_s, loop), name="exit-watchdog", daemon=True).start()

    def disarm(self) -> None:
        """The stop finished: the countdown ends without acting."""
        self._disarmed.set()

    def _expire(self, after_s: float, loop: asyncio.AbstractEventLoop) -> None:
        if self._disarmed.wait(after_s):
            return
        log.critical("the process did not finish stopping within %.0f s: ending it (exit status 1); "
                     "the stacks follow", after_s)
        try:
            sys.stderr.write(_task_stacks(loop))
            sys.stderr.flush()
            faulthandler.dump_traceback(all_threads=True)
            if self._before_exit is not None:
                self._before_exit()
        finally:
            os._exit(1)


def _task_stacks(loop: asyncio.AbstractEventLoop) -> str:
    """Each pending task's stack (read from another thread: best effort)."""
    out = io.StringIO()
    for _ in range(3):  # the loop may change its set of tasks while we copy it
        try:
            tasks = list(asyncio.all_tasks(loop))
            break
        except RuntimeError:
            continue
    else:
        return "(the event loop's tasks could not be listed)\n"
    out.write(f"{len(tasks)} asyncio task(s) pending:\n")
    for task in tasks:
        try:
            task.print_stack(file=out)
        except Exception as exc:  # a diagnostic must not stop the exit
            out.write(f"  {task.get_name()}: stack unavailable ({exc!r})\n")
    return out.getvalue()


__all__ = ["ExitWatchdog"]
