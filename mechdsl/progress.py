"""Progress on stderr with rich (the one progress library of mechdsl: the sweep's bar uses it too).

Only when stderr is a terminal; transient (erased when done), so that logs and ``--json`` stay clean.
"""
from __future__ import annotations

import sys

_console = None


def console():
    """The shared stderr console (created on first use)."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True, highlight=False)
    return _console


class Progress:
    """``with Progress(total, "building IC") as bar: ... bar.step()``: a rich bar with rate and ETA, shown
    only for long loops on a terminal."""

    def __init__(self, total: int, label: str, min_total: int = 50_000, every: float = 0.5):
        self.total, self.label = total, label
        self.active = total >= min_total and sys.stderr.isatty()
        self._bar = self._task = None
        self.done = 0
        if self.active:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn,
                                       TimeRemainingColumn)

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=console(), transient=True, refresh_per_second=1 / every)
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)

    def __enter__(self):
        return self

    def step(self, n: int = 1):
        self.done += n
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def close(self):
        """Erase the bar."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        self.active = False

    def __exit__(self, *exc):
        self.close()
        return False


class Status:
    """One transient status line (``solving auxiliary problem A[3] ...``), replaced by the next."""

    def __init__(self):
        self._status = None

    def show(self, text: str):
        if not sys.stderr.isatty():
            return
        if self._status is None:
            self._status = console().status(text, spinner="dots")
            self._status.start()
        else:
            self._status.update(text)

    def clear(self):
        if self._status is not None:
            self._status.stop()
            self._status = None
