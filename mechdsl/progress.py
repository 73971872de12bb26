"""A light progress line on stderr for long loops (only when stderr is a terminal)."""
from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total, "building IC") as bar: ... bar.step()``; silent unless the loop is long."""

    def __init__(self, total: int, label: str, min_total: int = 50_000, every: float = 0.5):
        self.total, self.label = total, label
        self.active = total >= min_total and sys.stderr.isatty()
        self.every, self.done, self._last = every, 0, 0.0

    def __enter__(self):
        return self

    def step(self, n: int = 1):
        self.done += n
        if self.active:
            now = time.perf_counter()
            if now - self._last >= self.every:
                self._last = now
                pct = 100.0 * self.done / max(self.total, 1)
                print(f"\r{self.label}: {self.done}/{self.total} ({pct:.0f}%)", end="", file=sys.stderr, flush=True)

    def close(self):
        """Erase the line."""
        if self.active:
            print("\r" + " " * (len(self.label) + 40) + "\r", end="", file=sys.stderr, flush=True)
            self.active = False

    def __exit__(self, *exc):
        self.close()
        return False
