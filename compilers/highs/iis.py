"""Irreducible infeasible subsets (IIS) of an infeasible compiled form, named in spec terms.

Stage: ``compiled form -> backend``.  :func:`compute_iis` finds a set of *atoms* -- each a
half-space of the form: one side of a row (``("row", i, "lo")``: ``a_i x >= row_lo[i]``, or
``"hi"``) or one bound of a column (``("col", j, "lo")``: ``x_j >= col_lo[j]``, or ``"hi"``) -- such
that

* the atoms alone (every other row dropped, every other bound made infinite; integrality kept
  for a MILP) admit no point, and
* dropping any one atom leaves a set that admits a point: the set is *irreducible*.

How (every step is a HiGHS solve of a zero-objective problem made of the atoms only):

1. A candidate infeasible set.  For an LP (a QP: its objective plays no part), HiGHS's own
   ``getIis`` on the feasibility LP: ``iis_strategy = 4`` ("find true IIS") on small models (it takes
   13 s on 5e3 rows), ``2`` (the elastic LP) on medium ones, and on large ones (where the elastic LP
   too takes seconds) nothing: the filter below starts from every row and bound.  For a MILP,
   the same on the LP relaxation when that is infeasible (an infeasible set of the relaxation is
   one of the MILP); otherwise, or when ``getIis`` fails or gives a set that is not infeasible,
   every atom of the form.
2. A deletion filter over the candidate, which is what makes the answer irreducible whatever
   step 1 gave: chunks (one per constraint family or variable family, split in halves when
   removing a whole chunk makes the set feasible) are removed while the rest stays infeasible.
   Every atom that is kept was tried alone, and the set without it was feasible; a subset of a
   feasible set is feasible, so the final set is irreducible (for a MILP, with its integrality).

If the time runs out during the filter the set returned is still infeasible, but
``Iis.irreducible`` is False (and the message says so).

:func:`describe` names each member as the spec does: a row as its constraint instance
(``IC[2->1]``, kind, ``file:line``; derived rows with the pass that made them), a column bound as
``x[3] >= 0 (var x at file:line)``.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sps

from ..standard.form import StandardForm

__all__ = ["Iis", "compute_iis", "describe", "render"]

Atom = tuple  # ("row" | "col", index, "lo" | "hi")


@dataclass
class Iis:
    """An infeasible subset of a form's atoms (see the module docstring)."""

    atoms: list[Atom] = field(default_factory=list)
    irreducible: bool = False
    method: str = ""          #: how the candidate was found ("HiGHS getIis", "all rows and bounds")
    solves: int = 0           #: HiGHS solves spent by the deletion filter
    seconds: float = 0.0
    message: str = ""

    @property
    def rows(self) -> list[int]:
        return sorted({i for what, i, _ in self.atoms if what == "row"})

    @property
    def columns(self) -> list[int]:
        return sorted({j for what, j, _ in self.atoms if what == "col"})


# --------------------------------------------------------------------------- the subproblem of a set of atoms

def subform(form: StandardForm, atoms) -> StandardForm:
    """The feasibility problem of ``atoms`` alone: their rows with only their sides, their bounds only."""
    use = {(w, s): np.zeros(form.m if w == "row" else form.n, dtype=bool)
           for w in ("row", "col") for s in ("lo", "hi")}
    for what, i, side in atoms:
        use[what, side][i] = True
    rows = np.flatnonzero(use["row", "lo"] | use["row", "hi"])
    A = sps.csr_matrix(form.A)[rows] if len(rows) else sps.csr_matrix((0, form.n))
    lo = np.where(use["row", "lo"][rows], np.asarray(form.row_lo, dtype=float)[rows], -np.inf)
    hi = np.where(use["row", "hi"][rows], np.asarray(form.row_hi, dtype=float)[rows], np.inf)
    clo = np.where(use["col", "lo"], np.asarray(form.col_lo, dtype=float), -np.inf)
    chi = np.where(use["col", "hi"], np.asarray(form.col_hi, dtype=float), np.inf)
    integer = np.asarray(form.integer, dtype=bool) if len(form.integer) else np.zeros(form.n, bool)
    return StandardForm(sense="minimize", c=np.zeros(form.n), A=A, row_lo=lo, row_hi=hi, col_lo=clo, col_hi=chi,
                        integer=integer.copy())


def all_atoms(form: StandardForm) -> list[Atom]:
    atoms = []
    for i in range(form.m):
        if np.isfinite(form.row_lo[i]):
            atoms.append(("row", i, "lo"))
        if np.isfinite(form.row_hi[i]):
            atoms.append(("row", i, "hi"))
    for j in range(form.n):
        if np.isfinite(form.col_lo[j]):
            atoms.append(("col", j, "lo"))
        if np.isfinite(form.col_hi[j]):
            atoms.append(("col", j, "hi"))
    return atoms


class _Checker:
    """Is a set of atoms feasible?  One silent HiGHS solve each; None when HiGHS does not decide."""

    def __init__(self, form: StandardForm, until: float | None, options: dict | None):
        self.form, self.until, self.options = form, until, dict(options or {})
        self.solves = 0

    def left(self) -> float | None:
        return None if self.until is None else self.until - time.monotonic()

    def feasible(self, atoms) -> bool | None:
        from .backend import solve_highs

        left = self.left()
        if left is not None and left <= 0:
            return None
        self.solves += 1
        sol = solve_highs(subform(self.form, atoms), options=self.options, time_limit=left)
        if sol.status == "optimal":
            return True
        if sol.status == "infeasible":
            return False
        return None


# --------------------------------------------------------------------------- HiGHS's own IIS

def _highs_candidate(form: StandardForm, until: float | None) -> list[Atom] | None:
    """HiGHS ``getIis`` on the feasibility LP of ``form`` (integrality dropped), or None; the strategy used is
    ``_highs_candidate.used``."""
    import highspy

    from .backend import HighsSession

    lp_form = replace(form, c=np.zeros(form.n), Q=None, c0=0.0,
                      integer=np.zeros(form.n, bool), x0=None, sense="minimize")
    left = None if until is None else max(until - time.monotonic(), 1e-3)
    sess = HighsSession(lp_form, time_limit=left)
    if getattr(sess, "_refused", None):
        return None
    h = sess.h
    if not hasattr(h, "getIis"):
        return None
    sol = sess.solve()
    if sol.status != "infeasible":
        return None  # the LP (relaxation) is feasible: nothing for getIis to find
    from .backend import _c_stdout_to

    iis = None
    # Small models: the true IIS (0.07 s on 111 rows, but 1.5 s on 1641 and 13 s on 4971 rows); larger ones:
    # the elastic LP (0.02 s on 1641 rows, 9 s on 9e4), whose infeasible set the deletion filter then shrinks.
    for strategy in ((4, 2) if form.m <= TRUE_IIS_ROWS else (2,)):
        with contextlib.suppress(Exception):
            h.setOptionValue("iis_strategy", strategy)
            if until is not None:
                h.setOptionValue("iis_time_limit", max(until - time.monotonic(), 1e-3))
        try:
            with _c_stdout_to(None):
                status, found = h.getIis()
        except Exception:  # pragma: no cover - a highspy without a working getIis
            return None
        if status == highspy.HighsStatus.kOk and getattr(found, "valid_", False) and len(found.row_index_) + len(
                found.col_index_):
            iis = found
            _highs_candidate.used = {4: "true IIS", 2: "elastic LP"}[strategy]
            break
    if iis is None:
        return None
    B = highspy.IisBoundStatus
    atoms: list[Atom] = []

    def add(what, idx, bound, lo, hi):
        if bound in (B.kIisBoundStatusLower, B.kIisBoundStatusBoxed) and np.isfinite(lo):
            atoms.append((what, idx, "lo"))
        if bound in (B.kIisBoundStatusUpper, B.kIisBoundStatusBoxed) and np.isfinite(hi):
            atoms.append((what, idx, "hi"))

    for i, b in zip(iis.row_index_, iis.row_bound_):
        add("row", int(i), B(b) if not isinstance(b, B) else b, form.row_lo[int(i)], form.row_hi[int(i)])
    for j, b in zip(iis.col_index_, iis.col_bound_):
        add("col", int(j), B(b) if not isinstance(b, B) else b, form.col_lo[int(j)], form.col_hi[int(j)])
    return atoms or None


# --------------------------------------------------------------------------- the deletion filter

def _chunks(form: StandardForm, atoms: list[Atom]) -> list[list[Atom]]:
    """The atoms grouped by constraint family (row block) and variable family (column block), in order."""
    def block_of(a):
        what, i, _ = a
        blocks = form.rows if what == "row" else form.columns
        for k, b in enumerate(blocks):
            if b.start <= i < b.stop:
                return (what, k)
        return (what, -1)

    groups: dict = {}
    for a in atoms:
        groups.setdefault(block_of(a), []).append(a)
    return list(groups.values())


def _filter(check: _Checker, atoms: list[Atom], chunks: list[list[Atom]]) -> tuple[list[Atom], bool]:
    """Deletion filter with halving: returns (infeasible subset, complete)."""
    keep = set(atoms)
    order = {a: k for k, a in enumerate(atoms)}
    stack = [c for c in reversed(chunks)]
    complete = True
    while stack:
        chunk = [a for a in stack.pop() if a in keep]
        if not chunk:
            continue
        rest = keep.difference(chunk)
        verdict = check.feasible(rest)
        if verdict is False:       # still infeasible without the chunk: it goes
            keep = rest
        elif verdict is None:      # undecided (time): keep it, and say the result may be reducible
            complete = False
            if check.left() is not None and check.left() <= 0:
                break
        elif len(chunk) > 1:       # needed as a whole: try its halves
            h = len(chunk) // 2
            stack.append(chunk[h:])
            stack.append(chunk[:h])
        # a single atom whose removal makes the set feasible stays
    if stack:
        complete = False
    return sorted(keep, key=order.__getitem__), complete


def compute_iis(form: StandardForm, *, time_limit: float | None = None, options: dict | None = None) -> Iis | None:
    """An irreducible infeasible subset of ``form``'s rows and bounds, or None when ``form`` is not infeasible."""
    t0 = time.monotonic()
    until = None if time_limit is None else t0 + float(time_limit)
    check = _Checker(form, until, options)
    cand = _highs_candidate(form, until) if form.m <= ELASTIC_ROWS else None
    method = f"HiGHS getIis ({getattr(_highs_candidate, 'used', '')}), then a deletion filter"
    if cand is not None and check.feasible(cand) is not False:
        cand = None  # not infeasible on its own (numerics, or integrality needed): start from everything
    if cand is None:
        cand = all_atoms(form)
        method = "a deletion filter over every constraint family and bound"
        verdict = check.feasible(cand)
        if verdict is not False:
            return None if verdict else Iis(message="HiGHS could not decide whether the model is feasible")
    atoms, complete = _filter(check, cand, _chunks(form, cand))
    iis = Iis(atoms=atoms, irreducible=complete, method=method, solves=check.solves,
              seconds=time.monotonic() - t0)
    if not complete:
        iis.message = ("the deletion filter did not finish (time limit, or a re-solve HiGHS did not decide): "
                       "an infeasible subset, maybe not irreducible")
    return iis


# --------------------------------------------------------------------------- in spec terms

def _jsonable_key(key) -> list:
    out = []
    for k in key:
        if isinstance(k, tuple):
            out.append(_jsonable_key(k))
        elif isinstance(k, (bool, np.bool_)):
            out.append(bool(k))
        elif isinstance(k, (int, np.integer)):
            out.append(int(k))
        elif isinstance(k, (float, np.floating)):
            f = float(k)
            out.append(int(f) if f.is_integer() else f)
        else:
            out.append(str(k))
    return out


def _num(v: float):
    v = float(v) + 0.0
    return int(v) if v.is_integer() and abs(v) < 2**53 else v


def _where(span) -> tuple:
    if span is None or not getattr(span, "line", 0):
        return None, None, ""
    return span.file, span.line, f"{span.file}:{span.line}"


def describe(form: StandardForm, iis: Iis, mech=None) -> list[dict]:
    """The members of ``iis`` in spec terms: one dict per row (its sides merged) and per column bound.

    Each has ``member`` ("constraint" or "bound"), ``id`` (``IC[2->1]``, ``x[3] >= 0``), ``kind``, ``file``,
    ``line``, ``where`` (``file:line``) and ``text`` (the line printed under the error message)."""
    from mechdsl.ir import nodes as ir
    from mechdsl.ir.ids import constraint_id

    defs, var_defs, type_dim = {}, {}, None
    if mech is not None:
        defs = {c.name: c for c in mech.problem.constraints}
        var_defs = {v.name: v for v in mech.problem.vars}
        types = getattr(mech, "types", None) or []
        type_dim = types[0].dim if types else None
    sides: dict = {}
    for what, i, side in iis.atoms:
        sides.setdefault((what, i), set()).add(side)
    out = []
    for (what, i), ss in sorted(sides.items(), key=lambda kv: (kv[0][0] != "row", kv[0][1])):
        if what == "row":
            b = next(b for b in form.rows if b.start <= i < b.stop)
            key = tuple(b.keys[i - b.start])
            c = defs.get(b.name)
            if c is None:  # a derived family (a reduction's rows, an epigraph): named like a spec one
                try:
                    kind = ir.ConKind(b.kind)
                except ValueError:
                    kind = ir.ConKind.PLAIN
                c = ir.ConstraintDef(b.name, kind, None, None, b.span, origin=b.origin)
            cid = constraint_id(c, key, type_dim)
            eq = bool(form.row_lo[i] == form.row_hi[i])
            side = "both" if len(ss) == 2 else ("lower" if "lo" in ss else "upper")
            file, line, where = _where(b.span)
            extra = []
            if b.part:
                extra.append(f"part {b.part} of its conjunction")
            # a row is lhs - rhs of the relation as written, so its lower side is "lhs >= rhs", its upper "lhs <= rhs"
            relation = "==" if side == "both" else (">=" if side == "lower" else "<=")
            if eq and side != "both":
                extra.append(f"only the '{relation}' direction of its '==' is needed")
            if b.origin:
                extra.append(f"derived: {b.origin}")
            text = f"{cid}  ({b.kind}" + (f", {where}" if where else "") + ")" + (
                "  [" + "; ".join(extra) + "]" if extra else "")
            out.append({"member": "constraint", "id": cid, "family": b.name, "kind": b.kind,
                        "index": _jsonable_key(key), "part": b.part or None, "side": side, "relation": relation,
                        "equality": eq,
                        "origin": b.origin, "file": file, "line": line, "where": where, "text": text})
        else:
            cb = next(cb for cb in form.columns if cb.start <= i < cb.stop)
            key = tuple(cb.keys[i - cb.start])
            name = f"{cb.name}[{','.join(map(str, key))}]" if key else cb.name
            lo, hi = form.col_lo[i], form.col_hi[i]
            v = var_defs.get(cb.name)
            file, line, where = _where(v.span if v is not None else None)
            if len(ss) == 2 and lo == hi:
                parts = [("both", f"{name} = {_num(lo):g}", lo)]
            else:
                parts = [("lower", f"{name} >= {_num(lo):g}", lo)] if "lo" in ss else []
                parts += [("upper", f"{name} <= {_num(hi):g}", hi)] if "hi" in ss else []
            decl = (f"var {cb.name}" + (f" {cb.kind}" if cb.kind in ("binary", "integer") else "")
                    + (f" at {where}" if where else "")) if v is not None else "an auxiliary column"
            for side, bid, bound in parts:
                out.append({"member": "bound", "id": bid, "variable": cb.name, "kind": "bound",
                            "index": _jsonable_key(key), "side": side, "bound": _num(bound),
                            "file": file, "line": line, "where": where, "text": f"{bid}  ({decl})"})
    return out


def render(members: list[dict], iis: Iis | None = None, limit: int | None = 50) -> str:
    """The lines printed under the "infeasible" message."""
    n_con = sum(m["member"] == "constraint" for m in members)
    n_bnd = len(members) - n_con
    what = " and ".join(x for x in (f"{n_con} constraint(s)" if n_con else "",
                                    f"{n_bnd} bound(s)" if n_bnd else "") if x)
    head = (f"  an irreducible infeasible subset (IIS): these {what} cannot hold together, "
            "and dropping any one of them leaves a feasible set:")
    if iis is not None and not iis.irreducible:
        head = f"  an infeasible subset ({what}; {iis.message or 'not shown to be irreducible'}):"
    shown = members if limit is None else members[:limit]
    lines = [head] + [f"    {m['text']}" for m in shown]
    if len(shown) < len(members):
        lines.append(f"    ... +{len(members) - len(shown)} more (--json lists them all)")
    return "\n".join(lines)


#: The IIS is computed on the full (unreduced, every IC row) model when it is estimated at most this many rows,
#: else on the model that was solved (whose rows may include a reduction's derived rows, named as such).
FULL_ROWS = 200_000
#: HiGHS's "true IIS" strategy up to this many rows; its elastic LP up to ELASTIC_ROWS; beyond, the deletion
#: filter straight from every family (0.5 s on the 9e4 rows of screening K = 300, where the elastic LP takes 9 s).
TRUE_IIS_ROWS = 500
ELASTIC_ROWS = 20_000
#: Default time for the IIS (getIis and the deletion filter), within what is left of ``--time-limit``.
SECONDS = 60.0
