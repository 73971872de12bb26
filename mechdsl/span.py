"""Source locations.

A :class:`Span` is attached to every AST node and every diagnostic, so that an
error can be printed as ``file:line:col`` with the offending source line and a
caret underneath.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open region of a source file (1-based lines and columns)."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


NO_SPAN = Span("<internal>", 0, 0, 0, 0)
