"""The state of the current run: its phase (for interrupts) and its wall-clock deadline (``--time-limit``).

A run is one ``solve`` (or ``compile``) in this process.  :func:`run` opens it with an optional time
limit; every stage that can take long asks :func:`remaining` for the seconds left (which it passes on
to the solver) or calls :func:`checkpoint` between steps.  Past the deadline both raise
:class:`TimeLimitReached` (exit 1) naming the phase that was running.  :func:`phase` records what is
running, so that an interrupt (Ctrl-C) can say where it stopped.
"""
from __future__ import annotations

import contextlib
import time

from .errors import SolveError


class TimeLimitReached(SolveError):
    """The run's ``--time-limit`` passed (exit 1)."""

    def __init__(self, message: str):
        super().__init__(message, status="time limit")


_deadline: float | None = None
_limit: float | None = None
_phase: str = "starting"


@contextlib.contextmanager
def run(time_limit: float | None):
    """Open a run with a wall-clock limit in seconds (None: no limit); runs nest, the inner one wins."""
    global _deadline, _limit
    saved = (_deadline, _limit)
    if time_limit is not None:
        _deadline, _limit = time.monotonic() + float(time_limit), float(time_limit)
    try:
        yield
    finally:
        _deadline, _limit = saved


def phase(name: str) -> None:
    """Record the phase now running (shown when the run is interrupted or times out)."""
    global _phase
    _phase = name


def current_phase() -> str:
    return _phase


def remaining(what: str | None = None) -> float | None:
    """Seconds left before the deadline (None without one); raises TimeLimitReached when none are left."""
    if what is not None:
        phase(what)
    if _deadline is None:
        return None
    left = _deadline - time.monotonic()
    if left <= 0:
        raise TimeLimitReached(f"error: the time limit of {_limit:g} s was reached while {_phase}")
    return left


def checkpoint(what: str | None = None) -> None:
    """Raise TimeLimitReached if the deadline has passed."""
    remaining(what)


__all__ = ["TimeLimitReached", "run", "phase", "current_phase", "remaining", "checkpoint"]
