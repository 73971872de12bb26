"""Parameter sweeps: one spec solved over a grid of param values, in this process or on a Dask cluster.

Stage: ``Model + grid -> one row per point``.  The spec is parsed, checked and lowered once; each point
binds the same lowered mechanism to the base data (``--data``, ``--set``) with only the swept params
replaced, and solves it.  A point that fails (a data error, an infeasible model, a solver failure, a
failed verification) is a row with its status and message; it never stops the sweep.

Auxiliary problems whose IR does not depend on a swept param (directly or through computed params,
sets, types, populations or other auxiliary problems: the names in their SymPy templates, closed over
the declarations) are solved once per process and reused at every point.  No warm start is carried from
one point to the next: the answer at a point never depends on which points ran before it, so a serial
sweep, a resumed one and one on Dask give the same rows.

The grid syntax (``--grid NAME=VALUES``) is parsed by :func:`parse_grid`:

* a list ``0.1,0.3,0.5``; a range ``0:1:0.1`` (start:stop:step, the stop included when the range lands
  on it; decimal arithmetic, so ``0:1:0.1`` has 11 points ending at exactly 1) or ``2:10`` (step 1);
  the two mix: ``0,0.5:1:0.25``;
* JSON, for an indexed param: ``p=[[0.1,0.9],[0.5,0.5]]`` is two values of ``p``.

Several grids form a product, the last varying fastest.  Outputs: CSV, JSON Lines, or Parquet (with
pyarrow).  Rows are written as they arrive and the file is rewritten in grid order at the end.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import itertools
import json
import logging
import math
import os
import re
import sys
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .data import MAX_NESTING, _check_value
from .errors import DataError, MechError, did_you_mean

#: The most points one sweep may have.
MAX_POINTS = 1_000_000
#: Columns every row has, in this order (then the reports and the selected variables).
FIXED = ("point", "status", "objective", "verification_ok", "max_regret", "max_ir_violation", "max_violation",
         "message")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")


class SweepError(MechError):
    """A sweep that cannot start: a bad grid, output file or cluster address (exit 2)."""


# ---------------------------------------------------------------------------------------------- grids
def parse_values(raw: str, where: str = "--grid") -> list:
    """The values of one ``--grid`` argument (the part after ``NAME=``).

    >>> parse_values("0:1:0.25")
    [0.0, 0.25, 0.5, 0.75, 1.0]
    >>> parse_values("2,5,10")
    [2, 5, 10]
    >>> parse_values("[[0.1,0.9],[0.5,0.5]]")
    [[0.1, 0.9], [0.5, 0.5]]
    """
    raw = raw.strip()
    if not raw:
        raise SweepError(f"error: {where}: no values (give e.g. 0.1,0.3,0.5 or 0:1:0.1)")
    if raw.startswith(("[", "{")):
        try:
            value = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            try:  # [0.1,0.9],[0.5,0.5]: a comma-separated list of arrays
                value = json.loads(f"[{raw}]")
            except (json.JSONDecodeError, RecursionError):
                shown = raw if len(raw) <= 60 else raw[:57] + "..."
                raise SweepError(f"error: {where}: cannot read '{shown}' as JSON; give a list of values, "
                                 "e.g. [[0.1,0.9],[0.5,0.5]] for an indexed param") from None
            if not isinstance(value, list):
                raise SweepError(f"error: {where}: expected a JSON list of values")
        if not isinstance(value, list):
            raise SweepError(f"error: {where}: expected a JSON list of values, e.g. [[0.1,0.9],[0.5,0.5]]")
        if not value:
            raise SweepError(f"error: {where}: the list of values is empty")
        for v in value:
            _check_number_tree(v, where)
        return value
    out: list = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            raise SweepError(f"error: {where}: an empty value in '{raw}'")
        if ":" in item:
            out.extend(parse_range(item, where))
        else:
            out.append(_number(item, where))
    return out


def parse_range(text: str, where: str = "--grid") -> list:
    """``start:stop:step`` (or ``start:stop``, step 1): start, start + step, ... up to stop, inclusive when
    it lands on stop.  Computed in decimal arithmetic from the digits as typed, so there is no float drift
    (``0:1:0.1`` ends at exactly 1.0, ``0.1:0.3:0.1`` has 3 points); a stop within 1e-9 steps of a grid
    point counts as landing on it.  Integers in, integers out."""
    parts = [p.strip() for p in text.split(":")]
    if len(parts) not in (2, 3) or not all(parts):
        raise SweepError(f"error: {where}: '{text}' is not a range; write start:stop:step, e.g. 0:1:0.1")
    try:
        nums = [Decimal(p) for p in parts]
    except InvalidOperation:
        raise SweepError(f"error: {where}: '{text}' is not a range of numbers (start:stop:step)") from None
    if not all(n.is_finite() for n in nums):
        raise SweepError(f"error: {where}: the range '{text}' needs finite numbers")
    lo, hi = nums[0], nums[1]
    step = nums[2] if len(nums) == 3 else Decimal(1)
    if step == 0:
        raise SweepError(f"error: {where}: the step of the range '{text}' is 0")
    span = (hi - lo) / step
    if span < 0:
        raise SweepError(f"error: {where}: the range '{text}' is empty (the step goes away from the stop)")
    count = int((span + Decimal("1e-9")).to_integral_value(rounding=ROUND_FLOOR)) + 1
    if count > MAX_POINTS:
        raise SweepError(f"error: {where}: the range '{text}' has {count} points (limit {MAX_POINTS})")
    integral = not any(c in p for p in parts for c in ".eE")
    out = []
    for k in range(count):
        v = lo + k * step
        if k == count - 1 and abs(v - hi) <= abs(step) * Decimal("1e-9"):
            v = hi  # landed on the stop (within the tolerance): the stop as typed
        out.append(int(v) if integral else float(v))
    return out


def _number(text: str, where: str):
    try:
        return int(text)
    except ValueError:
        pass
    try:
        v = float(text)
    except ValueError:
        raise SweepError(f"error: {where}: '{text}' is not a number (values are numbers, ranges "
                         "start:stop:step, or a JSON list)") from None
    if not math.isfinite(v):
        raise SweepError(f"error: {where}: '{text}' is not a finite number")
    return v


def _check_number_tree(v, where: str):
    """A grid value is data like any --set value: the one validator of data values decides."""
    try:
        _check_value(v, where)
    except DataError as exc:
        if "nested" in str(exc):
            raise SweepError(f"error: {where}: the value is nested too deeply (limit {MAX_NESTING})") from None
        raise SweepError(f"error: {where}: values must be finite numbers (or arrays of them), got "
                         f"{json.dumps(v, default=str)[:40]}") from None


def parse_grid(text: str) -> tuple[str, list]:
    """One ``--grid NAME=VALUES`` argument: ``(name, values)``."""
    if "=" not in text:
        raise SweepError(f"error: --grid {text}: expected NAME=VALUES, e.g. --grid N=2,5,10 or --grid x=0:1:0.1")
    name, raw = text.split("=", 1)
    name = name.strip()
    if not _NAME.match(name):
        raise SweepError(f"error: --grid {text}: '{name}' is not a valid param name")
    return name, parse_values(raw, f"--grid {name}")


def make_grid(grid: Mapping | Sequence[str]) -> dict[str, list]:
    """A grid from ``--grid`` strings or a mapping ``{name: values}`` (a list, a range, a numpy array, or a
    string in the ``--grid`` syntax); checks that no value repeats."""
    out: dict[str, list] = {}
    items = grid.items() if isinstance(grid, Mapping) else (parse_grid(g) for g in grid)
    for name, values in items:
        if name in out:
            raise SweepError(f"error: --grid {name}: given twice (several grids form a product; give each "
                             "param once)")
        if isinstance(values, str):
            values = parse_values(values, f"--grid {name}")
        else:
            values = [_plain(v) for v in (values.tolist() if hasattr(values, "tolist") else list(values))]
            if not values:
                raise SweepError(f"error: --grid {name}: no values")
            for v in values:
                _check_number_tree(v, f"--grid {name}")
        seen = set()
        for v in values:
            k = _canon(v)
            if k in seen:
                raise SweepError(f"error: --grid {name}: the value {json.dumps(v)} is repeated")
            seen.add(k)
        out[name] = values
    if not out:
        raise SweepError("error: sweep: no grid (give at least one --grid NAME=VALUES)")
    size = math.prod(len(v) for v in out.values())
    if size > MAX_POINTS:
        raise SweepError(f"error: sweep: the grid has {size} points (limit {MAX_POINTS})")
    return out


def _canon(v) -> str:
    """A value's identity for matching points (1 and 1.0 are the same value)."""
    def norm(x):
        if isinstance(x, bool):
            return x
        if isinstance(x, (int, float)):
            return float(x)
        if isinstance(x, (list, tuple)):
            return [norm(y) for y in x]
        if isinstance(x, dict):
            return {str(k): norm(y) for k, y in x.items()}
        return x
    return json.dumps(norm(v), sort_keys=True, separators=(",", ":"))


def point_key(names: Sequence[str], values: Mapping) -> tuple:
    return tuple(_canon(values[n]) for n in names)


def check_grid(mech, grid: Mapping[str, list]) -> None:
    """Every swept name is a param of the spec; an indexed param takes arrays, a scalar one numbers."""
    params = mech.params
    msgs = []
    for name, values in grid.items():
        d = params.get(name)
        if d is None:
            other = mech.decl(name) or next((v for v in mech.problem.vars if v.name == name), None)
            what = (f"'{name}' is a {type(other).__name__[:-3].lower()}, not a param; only params are swept"
                    if other is not None else f"unknown param '{name}'")
            hint = did_you_mean(name, list(params)) if other is None else None
            msgs.append(f"error: --grid {name}: {what}" + (f" ({hint})" if hint else ""))
            continue
        scalar = d.domain is None
        bad = next((v for v in values if isinstance(v, (list, dict)) == scalar), None)
        if bad is not None:
            if scalar:
                msgs.append(f"error: --grid {name}: param '{name}' is scalar, but a value is an array "
                            f"({json.dumps(bad)[:40]})")
            else:
                msgs.append(f"error: --grid {name}: param '{name}' is indexed, so each value is an array: "
                            f"write the list of values as JSON, e.g. --grid '{name}=[[0.1,0.9],[0.5,0.5]]'")
    if msgs:
        raise SweepError("\n".join(msgs))


# ---------------------------------------------------------------------------------------------- aux cache
def _names_in(obj, out: set) -> None:
    """Every name an IR object refers to (over-approximated: binders, attributes and labels too)."""
    import sympy as sp

    if obj is None or isinstance(obj, (bool, int, float)):
        return
    if isinstance(obj, sp.Basic):
        out.update(s.name for s in obj.atoms(sp.Symbol))
        return
    if isinstance(obj, str):
        out.add(obj)
        return
    if isinstance(obj, (tuple, list, set, frozenset)):
        for x in obj:
            _names_in(x, out)
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            _names_in(k, out)
            _names_in(v, out)
        return
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            if f.name in ("span", "name"):  # a declaration's own name, a location: not references
                continue
            _names_in(getattr(obj, f.name), out)
        return
    import enum

    if isinstance(obj, enum.Enum):
        return
    raise TypeError(type(obj).__name__)  # something the walk does not know: the caller plays safe


def cacheable_auxes(mech, swept: Iterable[str]) -> set[str]:
    """The auxiliary problems whose results do not depend on the swept params: nothing in their domain or
    problem names a swept param or a declaration that (transitively) depends on one."""
    from .ir import nodes as ir

    tainted = set(swept)
    refs: dict[str, set | None] = {}
    for d in mech.data_decls:
        names: set = set()
        try:
            _names_in(d, names)
        except TypeError:
            names = None  # unknown structure: assume it depends on everything
        refs[d.name] = names
    changed = True
    while changed:
        changed = False
        for d in mech.data_decls:
            if d.name in tainted:
                continue
            names = refs[d.name]
            if names is None or names & tainted:
                tainted.add(d.name)
                changed = True
    return {d.name for d in mech.data_decls if isinstance(d, ir.AuxDef) and d.name not in tainted}


# ---------------------------------------------------------------------------------------------- one point
class PointRunner:
    """Solves the points of a sweep with one lowered mechanism (one per process; not thread-safe)."""

    def __init__(self, model, names: Sequence[str], options, select: Sequence[str] = (), cache_aux: bool = True):
        from .api import Model

        model.check()
        # A private Model that shares the parsed and lowered spec: the caller's model is left as it was.
        self.model = Model(model.module, dict(model._data), progress=False)
        self.model.table, self.model.mech = model.table, model.mech
        self.model.max_rows = options.max_rows
        self.base = dict(model._data)
        self.names = tuple(names)
        self.options = options
        self.select = tuple(select)
        self.cacheable = cacheable_auxes(model.mech, names) if cache_aux else set()
        self.aux_cache: dict[tuple, dict] = {}
        self.aux_solved = 0
        solve_aux = self.model._solve_aux

        def cached(inst, aux, key, env):
            if aux.name not in self.cacheable:
                self.aux_solved += 1
                return solve_aux(inst, aux, key, env)
            hit = self.aux_cache.get((aux.name, key))
            if hit is None:
                self.aux_solved += 1
                hit = self.aux_cache[(aux.name, key)] = _copy_aux(solve_aux(inst, aux, key, env))
            return _copy_aux(hit)

        # Model.instance() passes self._solve_aux to the Instance: this attribute shadows the method.
        self.model._solve_aux = cached

    def _rebind(self, values: Mapping) -> None:
        """The data of one point; everything Model caches from the data is dropped (the IR is kept)."""
        data = dict(self.base)
        for n in self.names:
            data[n] = (values[n], f"--grid {n}")
        m = self.model
        m._data = data
        m._instance = None
        m.__dict__.pop("_reductions", None)  # the reduction proofs use the data
        m.__dict__.pop("_aux_runs", None)    # notes about the auxiliary solves of the last point

    def run(self, index: int, values: Mapping) -> dict:
        from .api import _verification_message

        self._rebind(values)
        res, status, message = None, "error", ""
        try:
            res = self.model.solve(self.options)
            status = res.status
            if res.verification is not None and not res.verification.ok:
                status = "verification failed"
                message = _verification_message(res.verification)
        except MechError as exc:
            res = exc.result
            status = getattr(exc, "status", None) or "error"
            if res is not None and getattr(res, "status", None):
                status = res.status
            message = str(exc)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # a bug in mechdsl: recorded, so a long sweep goes on
            if os.environ.get("MECHDSL_DEBUG"):
                raise
            message = f"internal error: {type(exc).__name__}: {exc} (a bug in mechdsl; please report it)"
        return make_row(index, self.names, values, status, _first_line(message), res, self.select)


def _copy_aux(r: dict) -> dict:
    out = dict(r)
    if isinstance(r.get("vars"), dict):
        out["vars"] = {n: dict(v) for n, v in r["vars"].items()}
    return out


def _first_line(msg: str) -> str:
    line = msg.strip().splitlines()[0] if msg.strip() else ""
    return line[len("error: "):] if line.startswith("error: ") else line


def _flat(name: str, key: tuple) -> str:
    return f"{name}[{','.join(map(str, key))}]" if key else name


def make_row(index, names, values, status, message, res, select=()) -> dict:
    """One row: the point, the swept values, status, objective, verification, reports, selected variables."""
    row: dict[str, Any] = {"point": index}
    for n in names:
        row[n] = _plain(values[n])
    ver = getattr(res, "verification", None) if res is not None else None
    row.update(status=status, objective=_plain(getattr(res, "objective", None)),
               verification_ok=None if ver is None else bool(ver.ok),
               max_regret=None if ver is None else _plain(ver.max_regret),
               max_ir_violation=None if ver is None else _plain(ver.max_ir_violation),
               max_violation=None if ver is None else _plain(ver.max_violation),
               message=message)
    taken = set(row)

    def put(col, v, kind):
        if col in taken:  # a report or variable named like a fixed column or a swept param: report.NAME, var.NAME
            col = f"{kind}.{col}"
        taken.add(col)
        row[col] = _plain(v)

    if res is not None:
        for rep, table in (getattr(res, "reports", None) or {}).items():
            for key, v in table.items():
                put(_flat(rep, key), v, "report")
        variables = getattr(res, "variables", None) or {}
        for var in select:
            for key, v in variables.get(var, {}).items():
                put(_flat(var, key), v, "var")
    return row


def _plain(v):
    """JSON-native values: numbers, booleans, strings, None (for a NaN or infinity), lists."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if hasattr(v, "tolist") and not isinstance(v, (list, tuple, dict)):  # numpy scalars and arrays
        return _plain(v.tolist())
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v + 0.0 if math.isfinite(v) else None
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return str(v)


def summary(rows: Sequence[Mapping]) -> str:
    """``9 points: 8 optimal, 1 infeasible`` (the most frequent status first, ties in order of appearance)."""
    counts: dict[str, int] = {}
    for r in rows:
        s = r.get("status") or "error"
        counts[s] = counts.get(s, 0) + 1
    n = len(rows)
    order = sorted(counts.items(), key=lambda kv: -kv[1])  # stable: ties keep their first appearance
    return f"{n} point{'s' if n != 1 else ''}: " + ", ".join(f"{c} {s}" for s, c in order)


# ---------------------------------------------------------------------------------------------- output files
class Output:
    """A sweep's output file: CSV, JSON Lines (``.jsonl``/``.ndjson``) or Parquet, by extension.

    Rows are appended as they arrive (Parquet: to ``FILE.partial.jsonl`` beside it); :meth:`finish`
    rewrites the file atomically with every row in grid order."""

    FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}

    def __init__(self, path: str | Path):
        self.path = Path(path)
        fmt = self.FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise SweepError(f"error: -o {path}: unknown output format '{self.path.suffix}'; use .csv, .jsonl "
                             "or .parquet")
        if fmt == "parquet":
            try:
                import pyarrow  # noqa: F401
                import pyarrow.parquet  # noqa: F401
            except ImportError:
                raise SweepError(f"error: -o {path}: Parquet output needs pyarrow, which is not installed "
                                 "(pip install pyarrow, or write .csv or .jsonl)") from None
        if self.path.is_dir():
            raise SweepError(f"error: -o {path}: is a directory")
        self.fmt = fmt
        self.partial = self.path.with_name(self.path.name + ".partial.jsonl") if fmt == "parquet" else None
        self._rows: list[dict] = []
        self._cols: list[str] = []
        self._fh = None

    # -- reading (for --resume)
    def read(self) -> list[dict]:
        """The rows already in the file (none if it does not exist); a torn last line is skipped."""
        rows: list[dict] = []
        try:
            if self.fmt == "csv" and self.path.exists():
                text = self.path.read_text()
                if text and not text.endswith("\n"):  # the last row was cut short by an interrupted run
                    text = text[:text.rfind("\n") + 1]
                reader = csv.reader(io.StringIO(text, newline=""))
                header = next(reader, None) or []
                for cells in reader:
                    if len(cells) == len(header):
                        rows.append({h: _read_cell(h, c) for h, c in zip(header, cells)})
            elif self.fmt == "jsonl" and self.path.exists():
                rows.extend(_read_jsonl(self.path))
            elif self.fmt == "parquet":
                if self.path.exists():
                    import pyarrow.parquet as pq

                    rows.extend(pq.read_table(self.path).to_pylist())
                if self.partial.exists():
                    rows.extend(_read_jsonl(self.partial))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise SweepError(f"error: --resume: cannot read {self.path}: {exc}") from None
        except Exception as exc:  # pyarrow's errors
            raise SweepError(f"error: --resume: cannot read {self.path}: {type(exc).__name__}: {exc}") from None
        return [r for r in rows if isinstance(r, dict) and r.get("status")]

    # -- writing
    def start(self, rows: Sequence[dict]) -> None:
        """Begin with ``rows`` (those kept by --resume), replacing what the file held."""
        self._rows = [dict(r) for r in rows]
        self._cols = _columns(self._rows)
        if self.fmt == "parquet":
            if self._rows:
                self._write_parquet(self._rows)
            if self.partial.exists():
                self.partial.unlink()
            self._fh = open(self.partial, "a")
        else:
            self._rewrite(self._rows)
            self._fh = open(self.path, "a", newline="")

    def add(self, row: dict) -> None:
        self._rows.append(dict(row))
        if self.fmt in ("jsonl", "parquet"):
            self._fh.write(json.dumps(row) + "\n")
        else:
            new = [c for c in row if c not in self._cols]
            if new:  # a column no earlier row had (e.g. a report over a swept index set): rewrite the file
                self._fh.close()
                self._cols += new
                self._rewrite(self._rows)
                self._fh = open(self.path, "a", newline="")
            else:
                csv.writer(self._fh, lineterminator="\n").writerow([_csv_cell(row.get(c)) for c in self._cols])
        self._fh.flush()

    def finish(self, rows: Sequence[dict]) -> None:
        """The final file: ``rows`` in the order given, written atomically."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        rows = list(rows)
        self._cols = _columns(rows)
        if self.fmt == "parquet":
            self._write_parquet(rows)
            if self.partial.exists():
                self.partial.unlink()
        else:
            self._rewrite(rows)

    def _rewrite(self, rows) -> None:
        cols = self._cols = list(dict.fromkeys(self._cols + _columns(rows)))
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", newline="") as f:
            if self.fmt == "csv":
                w = csv.writer(f, lineterminator="\n")
                if cols:
                    w.writerow(cols)
                for r in rows:
                    w.writerow([_csv_cell(r.get(c)) for c in cols])
            else:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
        os.replace(tmp, self.path)

    def _write_parquet(self, rows) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = _columns(rows)
        arrays = {}
        for c in cols:
            vals = [r.get(c) for r in rows]
            try:
                arrays[c] = pa.array(vals)
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed kinds in one column: as JSON text
                arrays[c] = pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v)
                                      for v in vals])
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        pq.write_table(pa.table(arrays) if arrays else pa.table({}), tmp)
        os.replace(tmp, self.path)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _columns(rows: Iterable[Mapping]) -> list[str]:
    cols: dict[str, None] = {}
    for r in rows:
        for c in r:
            cols.setdefault(c, None)
    return list(cols)


def _csv_cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def _read_cell(col: str, text: str):
    if col in ("status", "message"):
        return text
    if text == "":
        return None
    try:
        v = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text
    return v if isinstance(v, (int, float, bool, list, dict)) else text


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by an interrupted run
    return rows


# ---------------------------------------------------------------------------------------------- progress
class _Bar:
    """A rich progress bar on stderr (points done, rate, elapsed, ETA); silent when disabled."""

    def __init__(self, total: int, done: int, enabled: bool, label: str = "sweep"):
        self.progress = None
        self.failed = 0
        self.label = label
        if not enabled or total == 0:
            return
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task):
                speed = task.finished_speed or task.speed
                if not speed:
                    return Text("  -- pt/s", style="progress.data.speed")
                return Text(f"{speed:.2f} pt/s" if speed >= 1 else f"{1 / speed:.1f} s/pt",
                            style="progress.data.speed")

        self.progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), Rate(), TimeElapsedColumn(), TextColumn("eta"),
                                 TimeRemainingColumn(), console=Console(stderr=True, force_terminal=enabled),
                                 refresh_per_second=4)
        self.task = self.progress.add_task(label, total=total, completed=done)
        self.progress.start()

    def advance(self, row: Mapping) -> None:
        if self.progress is None:
            return
        if row.get("status") not in ("optimal", "locally optimal", "evaluated"):
            self.failed += 1
        desc = self.label + (f" ({self.failed} failed)" if self.failed else "")
        self.progress.update(self.task, advance=1, description=desc)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


# ---------------------------------------------------------------------------------------------- Dask
@dataclass(frozen=True)
class _Task:
    """What a worker needs to solve points: the spec text, the base data, the grid names, the options."""

    key: str
    version: str
    filename: str
    text: str
    data: dict
    names: tuple
    options: Any
    select: tuple
    cache_aux: bool


_RUNNERS: "OrderedDict[str, PointRunner]" = OrderedDict()  #: per worker process: the loaded models
_RUNNERS_LOCK = threading.Lock()  # one point at a time per process (runstate and the Model are per process)
_RUNNERS_KEPT = 4


def _runner_for(task: _Task) -> PointRunner:
    runner = _RUNNERS.get(task.key)
    if runner is None:
        from .api import Model
        from .syntax import parse

        logging.getLogger("pyomo").setLevel(logging.ERROR)
        model = Model(parse(task.text, task.filename), dict(task.data), progress=False)
        runner = PointRunner(model, task.names, task.options, task.select, task.cache_aux)
        _RUNNERS[task.key] = runner
        while len(_RUNNERS) > _RUNNERS_KEPT:
            _RUNNERS.popitem(last=False)
    _RUNNERS.move_to_end(task.key)
    return runner


def _dask_point(task: _Task, index: int, values: dict) -> dict:
    """A Dask task: one point, on whichever worker runs it (the Model is loaded once per worker process)."""
    from . import __version__

    with _RUNNERS_LOCK:
        if task.version != __version__:
            return make_row(index, task.names, values, "error", f"the worker runs mechdsl {__version__}, the "
                            f"client {task.version}: install the same version on every node", None)
        return _runner_for(task).run(index, values)


def _task_for(model, names, options, select, cache_aux) -> _Task:
    from . import __version__

    text, filename = model.module.source, model.path
    data = dict(model._data)
    h = hashlib.sha256()
    for part in (__version__, filename, text, json.dumps({k: v for k, (v, _) in sorted(data.items())},
                                                          sort_keys=True, default=str),
                 repr(tuple(names)), repr(options), repr(tuple(select)), repr(cache_aux)):
        h.update(part.encode())
        h.update(b"\0")
    return _Task(h.hexdigest(), __version__, filename, text, data, tuple(names), options, tuple(select), cache_aux)


def _connect(client, workers: int | None, scheduler: str | None, quiet: bool):
    """(client, things to close afterwards)."""
    if client is not None:
        return client, []
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SweepError("error: --workers/--scheduler need dask.distributed (pip install 'dask[distributed]')") from None
    if scheduler is not None:
        try:
            c = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise SweepError(f"error: --scheduler {scheduler}: cannot connect to the Dask scheduler: {exc}") from None
        return c, [c]
    if not quiet:
        print(f"starting a Dask LocalCluster with {workers} worker process(es) ...", file=sys.stderr, flush=True)
    # The worker processes ignore SIGINT (an ignored signal stays ignored in a spawned interpreter): Ctrl-C
    # reaches the whole process group, and only this process should handle it (it stops the workers itself).
    import signal

    saved = None
    if threading.current_thread() is threading.main_thread():
        saved = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
    finally:
        if saved is not None:
            signal.signal(signal.SIGINT, saved)
    c = Client(cluster)
    return c, [c, cluster]


def _run_dask(client, task: _Task, todo: list, accept: Callable[[dict], None]) -> None:
    from distributed import as_completed

    shipped = client.scatter(task, broadcast=True, hash=False)
    token = uuid.uuid4().hex[:10]
    futures = {}
    for index, values in todo:
        f = client.submit(_dask_point, shipped, index, values, key=f"mechdsl-point-{index}-{token}", pure=False)
        futures[f] = (index, values)
    from . import runstate

    done = 0
    try:
        runstate.phase(f"sweeping on Dask (0 of {len(futures)} points back)")
        for f in as_completed(list(futures)):
            index, values = futures[f]
            done += 1
            runstate.phase(f"sweeping on Dask ({done} of {len(futures)} points back)")
            if f.status == "finished":
                row = f.result()
            else:  # the task itself failed on the cluster (a worker died, mechdsl not importable there, ...)
                exc = f.exception()
                row = make_row(index, task.names, values, "error", f"dask: {type(exc).__name__}: {exc}", None)
            accept(row)
            f.release()
    finally:
        pending = [f for f in futures if f.status not in ("finished", "error")]
        if pending:
            client.cancel(pending)


# ---------------------------------------------------------------------------------------------- the sweep
@dataclass
class SweepRun:
    """The outcome of :func:`run_sweep`: the rows in grid order and what was done."""

    rows: list[dict]
    names: tuple
    resumed: int = 0           #: points found in the output file (--resume) and not solved again
    solved: int = 0            #: points solved by this run
    extra: int = 0             #: rows of the output file that are not points of this grid (kept, at the end)
    seconds: float = 0.0
    aux_solved: int | None = None  #: auxiliary problems solved (serial sweeps only)
    output: str | None = None

    def summary(self) -> str:
        return summary(self.rows[:len(self.rows) - self.extra] if self.extra else self.rows)


def run_sweep(model, grid, *, options=None, select: Sequence[str] = (), output=None, resume: bool = False,
              client=None, workers: int | None = None, scheduler: str | None = None, progress: bool | None = None,
              quiet: bool = False, cache_aux: bool = True) -> SweepRun:
    """Solve ``model`` at every point of ``grid``; see :meth:`mechdsl.api.Model.sweep`."""
    from .api import SolveOptions

    t0 = time.perf_counter()
    model.check()
    grid = make_grid(grid)
    check_grid(model.mech, grid)
    names = tuple(grid)
    select = _check_select(model.mech, select)
    options = dataclasses.replace(options or SolveOptions(), strict=False, tee=False)
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise SweepError(f"error: --workers must be a positive integer, not {workers}")
    if sum(x is not None for x in (client, workers, scheduler)) > 1:
        raise SweepError("error: give one of --workers, --scheduler (or client=)")
    out = Output(output) if output is not None else None
    if resume and out is None:
        raise SweepError("error: --resume needs the output file (-o FILE) of the run to resume")

    points = [dict(zip(names, p)) for p in itertools.product(*grid.values())]
    keys = [point_key(names, p) for p in points]
    rows: dict[int, dict] = {}
    extra: list[dict] = []
    if resume:
        existing = out.read()
        if existing:  # its swept params are the columns between "point" and "status"
            cols = list(existing[0])
            before = cols[cols.index("point") + 1:cols.index("status")] if "point" in cols and "status" in cols \
                and cols.index("point") < cols.index("status") else None
            if before is None or set(before) != set(names):
                was = f"a sweep over {', '.join(before) or 'nothing'}" if before is not None else "not a sweep's output"
                raise SweepError(f"error: --resume: {out.path} is {was}, not over {', '.join(names)}; "
                                 "write to another file (-o)")
        where = {k: i for i, k in enumerate(keys)}
        for r in existing:
            try:
                i = where.get(point_key(names, r))
            except (KeyError, TypeError):
                i = None
            if i is None:
                extra.append({**r, "point": None})
            else:
                rows[i] = {**r, "point": i}
    resumed = len(rows)
    todo = [(i, p) for i, p in enumerate(points) if i not in rows]
    enabled = (sys.stderr.isatty() if progress is None else bool(progress)) and not quiet
    if out is not None:
        out.start([rows[i] for i in sorted(rows)] + extra)
    bar = _Bar(len(points), resumed, enabled)
    aux_solved = None

    def accept(row):
        rows[row["point"]] = row
        if out is not None:
            out.add(row)
        bar.advance(row)

    closers = []
    dask_log = logging.getLogger("distributed")
    dask_level = dask_log.level
    try:
        if todo and (client is not None or workers is not None or scheduler is not None):
            # Dask's own log (cluster start and stop, at info) follows mechdsl's level (--log-level, -q); importing
            # distributed configures its logger, so the level is set after the import.
            try:
                import distributed  # noqa: F401
            except ImportError:
                pass  # _connect says what is missing
            dask_level = dask_log.level
            dask_log.setLevel(max(logging.getLogger("mechdsl").getEffectiveLevel(), logging.ERROR if quiet else 0))
            client, closers = _connect(client, workers, scheduler, quiet)
            _run_dask(client, _task_for(model, names, options, select, cache_aux), todo, accept)
        elif todo:
            runner = PointRunner(model, names, options, select, cache_aux)
            for i, p in todo:
                accept(runner.run(i, p))
            aux_solved = runner.aux_solved
    finally:
        bar.close()
        final = [rows[i] for i in sorted(rows)] + extra
        cols = _columns(final)  # every row with every column (None where a point has no value), in grid order
        final = [{c: r.get(c) for c in cols} for r in final]
        if out is not None:
            out.finish(final)
        for c in closers:
            try:
                c.close()
            except Exception:  # pragma: no cover - closing a cluster that is already gone
                pass
        dask_log.setLevel(dask_level)
    return SweepRun(rows=final, names=names, resumed=resumed, solved=len(todo), extra=len(extra),
                    seconds=time.perf_counter() - t0, aux_solved=aux_solved,
                    output=str(out.path) if out is not None else None)


def _check_select(mech, select) -> tuple:
    if isinstance(select, str):
        select = [select]
    names = []
    for item in select or ():
        names.extend(s.strip() for s in str(item).split(",") if s.strip())
    known = [v.name for v in mech.problem.vars]
    for n in names:
        if n not in known:
            hint = did_you_mean(n, known)
            raise SweepError(f"error: --select {n}: not a variable of the main problem"
                             + (f" ({hint})" if hint else f" (its variables: {', '.join(known) or 'none'})"))
    return tuple(dict.fromkeys(names))


def sweep(model, grid, *, client=None, pandas: bool = False, **kwargs):
    """The rows of :func:`run_sweep` (a list of dicts in grid order, or a DataFrame with ``pandas=True``)."""
    run = run_sweep(model, grid, client=client, **kwargs)
    if pandas:
        try:
            import pandas as pd
        except ImportError:
            raise MechError("error: sweep(pandas=True) needs pandas (pip install pandas)") from None
        return pd.DataFrame(run.rows)
    return run.rows


def write_csv(rows: Sequence[Mapping], stream) -> None:
    """Rows as CSV on a text stream (the sweep's output without -o)."""
    cols = _columns(rows)
    w = csv.writer(stream, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_csv_cell(r.get(c)) for c in cols])


__all__ = ["parse_grid", "parse_values", "parse_range", "make_grid", "check_grid", "cacheable_auxes",
           "PointRunner", "Output", "SweepRun", "run_sweep", "sweep", "summary", "write_csv", "SweepError"]
