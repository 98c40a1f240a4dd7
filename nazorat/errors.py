"""Errors of the composition root: a process that cannot start or must end."""

from __future__ import annotations


class NazoratError(Exception):
    """Base class; the CLI turns these into a message and a non-zero exit status."""


class FatalTaskError(NazoratError):
    """A task whose policy is ``fatal`` failed (or ended while the process was running)."""

    def __init__(self, task: str, reason: str) -> None:
        self.task = task
        self.reason = reason
        super().__init__(f"task {task!r} failed: {reason}")


class StartupError(NazoratError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


__all__ = ["FatalTaskError", "NazoratError", "StartupError"]
