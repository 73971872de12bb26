"""Errors and diagnostics.

Every user-facing failure is a :class:`MechError`.  The CLI catches it, prints
``str(err)`` and exits with ``err.exit_code``; no traceback is shown.  Internal
bugs raise :class:`InternalError`, which says so.

* exit code 2: the spec or its data is wrong (:class:`MechSyntaxError`,
  :class:`MechSemanticError`, :class:`DataError`);
* exit code 1: the model is fine but could not be solved as asked
  (:class:`SolveError`, :class:`VerificationError`).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .span import Span


MAX_SHOWN = 120  #: longest source excerpt shown under a message (long lines are windowed)


@dataclass(frozen=True)
class Diagnostic:
    """One message about the spec, located by a :class:`Span` when known."""

    message: str
    span: Span | None = None
    severity: str = "error"
    notes: tuple[str, ...] = ()
    help: str | None = None

    def render(self, sources: dict[str, str] | None = None) -> str:
        """Render like a compiler: location, message, source line, caret, hints."""
        head = f"{self.severity}: {self.message}"
        lines = []
        if self.span is not None and self.span.line > 0:
            lines.append(f"{self.span}: {head}")
            text = (sources or {}).get(self.span.file)
            if text is not None:
                src_lines = text.splitlines()
                if 0 < self.span.line <= len(src_lines):
                    src = src_lines[self.span.line - 1]
                    width = 1
                    if self.span.end_line == self.span.line:
                        width = max(1, self.span.end_column - self.span.column)
                    col = self.span.column
                    if len(src) > MAX_SHOWN:  # a window around the caret, marked with ellipses
                        start = max(0, col - 1 - MAX_SHOWN // 2)
                        shown = src[start:start + MAX_SHOWN]
                        prefix = "..." if start > 0 else ""
                        suffix = "..." if start + MAX_SHOWN < len(src) else ""
                        src = prefix + shown + suffix
                        col = col - start + len(prefix)
                        width = max(1, min(width, MAX_SHOWN - (col - 1 - len(prefix))))
                    gutter = f"{self.span.line:>4} | "
                    lines.append(gutter + src)
                    lines.append(" " * (len(gutter) + col - 1) + "^" * width)
        else:
            lines.append(head)
        for note in self.notes:
            lines.append(f"  note: {note}")
        if self.help:
            lines.append(f"  help: {self.help}")
        return "\n".join(lines)


class MechError(Exception):
    """Base class of every error a user can cause."""

    exit_code = 2
    result = None  #: the partial Result (e.g. status "infeasible") when a solve got that far

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def with_result(self, result) -> "MechError":
        """Attach the Result of a failed solve (the CLI still prints it with --json)."""
        self.result = result
        return self

    def __str__(self) -> str:
        return self.message


class MechSyntaxError(MechError):
    """The spec does not parse."""

    def __init__(self, diagnostic: Diagnostic, sources: dict[str, str]):
        self.diagnostic = diagnostic
        super().__init__(diagnostic.render(sources))


class MechSemanticError(MechError):
    """The spec parses but is not meaningful; carries every diagnostic found."""

    def __init__(self, diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None):
        self.diagnostics = list(diagnostics)
        n = len(self.diagnostics)
        body = "\n".join(d.render(sources) for d in self.diagnostics)
        tail = f"\n{n} error{'s' if n != 1 else ''} found" if n > 1 else ""
        super().__init__(body + tail)


class DataError(MechError):
    """A ``--set`` or ``--data`` value, or a param default, is unusable."""


class SolveError(MechError):
    """The solver did not return a usable solution (infeasible, unbounded, failure)."""

    exit_code = 1

    def __init__(self, message: str, status: str = "error"):
        super().__init__(message)
        self.status = status


class VerificationError(MechError):
    """The solution failed verification and ``--strict`` was given."""

    exit_code = 1


class InternalError(Exception):
    """A bug in mechdsl itself, not a user error.  Please report it."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """Return ``"did you mean 'x'?"`` for the closest candidate, if any is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


__all__ = [
    "Diagnostic", "MechError", "MechSyntaxError", "MechSemanticError", "DataError",
    "SolveError", "VerificationError", "InternalError", "did_you_mean",
]
