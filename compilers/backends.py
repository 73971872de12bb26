"""The table of backends that solve a compiled form: one entry per backend.

Stage: ``compiled form -> backend``.  Every backend is a function::

    solve(form: StandardForm, *, options=None, time_limit=None, tee=False) -> BackendSolution

and is listed in :data:`BACKENDS` with the problem classes it handles
(:attr:`StandardForm.problem_class`: ``LP``, ``QP``, ``MILP``, ...).  Importing
this module imports no solver: each entry's ``solve`` imports its backend on
first call, so ``import compilers.backends`` needs neither Pyomo nor highspy.

To add a backend, write its ``solve`` function and add one line to
:data:`BACKENDS`; ``tests/test_conformance.py`` then runs every canonical
problem of a class the backend claims through it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["BackendInfo", "BACKENDS", "UnknownBackend", "get_backend", "backends_for"]


class UnknownBackend(KeyError):
    """No backend of that name; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class BackendInfo:
    """One backend: its name, the problem classes it solves, its solve function and a line of doc."""

    name: str
    classes: frozenset
    solve: Callable   #: ``solve(form, *, options=None, time_limit=None, tee=False) -> BackendSolution``
    doc: str

    def handles(self, problem_class: str) -> bool:
        return problem_class in self.classes


def _highs(form, *, options=None, time_limit=None, tee=False):
    from .highs.backend import solve_highs

    return solve_highs(form, options=options, time_limit=time_limit, tee=tee)


def _pyomo_highs(form, *, options=None, time_limit=None, tee=False):
    from .pyomo.from_form import solve_pyomo

    return solve_pyomo(form, solver="highs", tee=tee, options=options, time_limit=time_limit)


def _pyomo_ipopt(form, *, options=None, time_limit=None, tee=False):
    from .pyomo.from_form import solve_pyomo

    return solve_pyomo(form, solver="ipopt", tee=tee, options=options, time_limit=time_limit)


BACKENDS: dict[str, BackendInfo] = {
    "highs": BackendInfo(
        "highs", frozenset({"LP", "QP", "MILP"}), _highs,
        "HiGHS read directly from the form through highspy: LP, convex QP, MILP; duals for LP and QP"),
    "pyomo-highs": BackendInfo(
        "pyomo-highs", frozenset({"LP", "QP", "MILP"}), _pyomo_highs,
        "the form as a named Pyomo model, solved by HiGHS through pyomo.contrib.solver"),
    "pyomo-ipopt": BackendInfo(
        "pyomo-ipopt", frozenset({"LP", "QP"}), _pyomo_ipopt,
        "the form as a named Pyomo model, solved by IPOPT (an ipopt executable, else casadi's); "
        "a local optimum, global for a convex problem"),
}


def get_backend(name: str) -> BackendInfo:
    """The backend called ``name`` (case-insensitive); :class:`UnknownBackend` (a ``KeyError``) listing
    the known names otherwise."""
    info = BACKENDS.get(name.lower()) if isinstance(name, str) else None
    if info is None:
        raise UnknownBackend(f"unknown backend {name!r}; known backends: {', '.join(BACKENDS)}")
    return info


def backends_for(problem_class: str) -> list[BackendInfo]:
    """The backends that handle ``problem_class``, in table order."""
    return [b for b in BACKENDS.values() if b.handles(problem_class)]
