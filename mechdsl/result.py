"""The result of a solve, in the spec's terms (a menu per type), and its JSON form.

Also what a notebook shows (short ``repr``, ``_repr_html_`` for :class:`Result` and for the
:class:`~mechdsl.api.Model`, :meth:`Result.to_pandas`) and what makes a result reproducible: the
versions of everything that took part, the hash of the spec text and the inputs (data file and its
hash, the overrides as given, the options) -- all in :meth:`Result.to_dict`.
"""
from __future__ import annotations

import hashlib
import html
import json
import math
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import MechError


def key_str(key: tuple) -> str:
    """Index tuple -> JSON key: joined by ',' ('' for scalars)."""
    flat = []
    for k in key:  # a profile (a tuple) contributes its entries, as in variable keys
        flat.extend(k if isinstance(k, tuple) else (k,))
    return ",".join(str(k) for k in flat)


def _num(v):
    if v is None:
        return None
    v = float(v) + 0.0  # no "-0.0" in the output
    return v if math.isfinite(v) else None


def _value(v):
    """A report value for JSON: booleans stay booleans, integers integers, tuples lists."""
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, str)):  # a str is a label
        return v
    if isinstance(v, tuple):
        return [_value(x) for x in v]
    try:
        import numpy as np

        if isinstance(v, np.bool_):
            return bool(v)
        if isinstance(v, np.integer):
            return int(v)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    return _num(v)


def _plain(v):
    """Anything a user passed as data or overrides, as JSON values (mappings, sequences, numbers, text)."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (bool, int, str)) or v is None:
        return v
    if isinstance(v, float):
        return _num(v)
    if hasattr(v, "tolist"):  # numpy arrays and scalars
        return _plain(v.tolist())
    return str(v)


def _aux_dict(r: dict) -> dict:
    out = {"status": r.get("status"), "feasible": r.get("feasible"), "objective": _num(r.get("objective"))}
    if r.get("vars"):
        out["variables"] = {n: {key_str(k): _num(x) for k, x in vals.items()} for n, vals in r["vars"].items()}
    return out


# --------------------------------------------------------------------------- provenance

def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def inputs_record(data=None, overrides=None) -> dict:
    """What was given besides the spec, as given: the data file (path and SHA-256 of its bytes) or mapping,
    and the overrides (``["K=10"]`` or a mapping)."""
    rec: dict = {"data": None, "overrides": None}
    if data is not None:
        if isinstance(data, (str, os.PathLike)):
            entry = {"path": str(data), "sha256": None}
            try:
                entry["sha256"] = hashlib.sha256(Path(data).read_bytes()).hexdigest()
            except OSError:
                pass
            rec["data"] = entry
        else:
            rec["data"] = {"values": _plain(data)}
    if overrides is not None:
        rec["overrides"] = _plain(overrides) if isinstance(overrides, Mapping) else [str(o) for o in overrides]
    return rec


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict:
    """The versions of mechdsl, Python and the libraries that solve (from package metadata; nothing imported)."""
    import shutil

    from . import __version__

    out = {"mechdsl": _dist_version("mechdsl") or __version__, "python": platform.python_version()}
    for dist in ("pyomo", "highspy", "casadi", "numpy", "scipy", "sympy"):
        out[dist] = _dist_version(dist)
    out["highs"] = out["highspy"]  # highspy's version is the HiGHS release it wraps
    exe = shutil.which("ipopt")
    out["ipopt"] = f"executable {exe}" if exe else (f"bundled with casadi {out['casadi']}" if out["casadi"] else None)
    return out


def stamp(res: "Result", model, opts=None, seconds: float | None = None) -> "Result":
    """Record on ``res`` what reproduces it: the spec's hash, the inputs and options, the total time."""
    module = getattr(model, "module", None)
    source = getattr(module, "source", None)
    if source is not None:
        res.spec_sha256 = sha256_text(source)
    rec = dict(getattr(model, "inputs", None) or inputs_record())
    rec["spec"] = str(getattr(model, "path", res.spec) or res.spec)
    if opts is not None:
        rec["options"] = {k: _plain(v) for k, v in vars(opts).items()}
    res.inputs = rec
    if seconds is not None:
        res.timings["total"] = seconds
    return res


# --------------------------------------------------------------------------- the result

@dataclass(repr=False)
class Result:
    """What ``mechdsl solve`` reports.  Fields mirror the ``--json`` object."""

    status: str
    objective: float | None
    problem_class: str
    solver: str
    variables: dict[str, dict[tuple, float]]
    parameters: dict[str, Any]
    verification: Any  # mechdsl.verify.Verification
    spec: str = ""
    objective_name: str = "objective"
    sense: str = "maximize"
    menu_rows: list[dict] = field(default_factory=list)
    aux: dict[str, dict] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    message: str = ""
    reduction: Any = None  #: the mechdsl.passes Reduction that was solved (None with --no-reduce)
    rows: dict = field(default_factory=dict)  #: constraint rows per family of the model that was solved
    schedule: list | None = None  #: relax mode: one dict per eps (eps, objective, max_regret, bound)
    exact_objective: float | None = None  #: relax mode: the exact (MILP) optimum, when it could be computed
    duals: dict = field(default_factory=dict)  #: shadow prices of binding rows: {family: {key: value}}
    certificate: Any = None  #: the backend's optimality certificate (compilers.standard.form.Certificate)
    reports: dict = field(default_factory=dict)  #: derived outputs: {report: {index tuple: value}}
    iis: list | None = None  #: infeasible: an irreducible infeasible subset, one dict per member (spec terms)
    spec_sha256: str | None = None  #: SHA-256 of the spec text
    inputs: dict = field(default_factory=dict)  #: data file / mapping, overrides as given, options

    @property
    def ok(self) -> bool:
        return self.status in ("optimal", "locally optimal", "evaluated")

    def to_dict(self) -> dict:
        params = {}
        for name, v in self.parameters.items():
            if isinstance(v, dict):
                params[name] = {key_str(k): _value(x) for k, x in v.items()}
            else:
                params[name] = {"": _value(v)}
        return {
            "status": self.status,
            "objective": _num(self.objective),
            "problem_class": self.problem_class,
            "solver": self.solver,
            "message": self.message,
            "variables": {n: {key_str(k): _num(x) for k, x in vals.items()} for n, vals in self.variables.items()},
            "parameters": params,
            "verification": self._verification_dict(),
            "menu": self._menu_dicts(),
            "duals": {n: {key_str(k): _num(x) for k, x in vals.items()} for n, vals in self.duals.items()},
            "reports": {n: {key_str(k): _value(x) for k, x in vals.items()} for n, vals in self.reports.items()},
            "aux": {label: _aux_dict(r) for label, r in self.aux.items()},
            "iis": [dict(m) for m in self.iis] if self.iis is not None else None,
            "notes": list(self.notes),
            "timings": {k: _num(v) for k, v in self.timings.items()},
            "versions": versions(),
            "spec_sha256": self.spec_sha256,
            "inputs": _plain(self.inputs) if self.inputs else {"spec": self.spec, "data": None, "overrides": None},
        } | self._mpcc_dict()

    def _menu_dicts(self) -> list[dict]:
        out = []
        for r in self.menu_rows:
            d = {}
            for k, v in r.items():
                if k == "binding":
                    d[k] = [str(c) for c in v]
                elif k == "prices":
                    d[k] = {str(c): _num(p) for c, p in v.items()}
                else:
                    d[k] = _value(v)
            out.append(d)
        return out

    def _verification_dict(self):
        if self.verification is None:
            return None
        d = self.verification.to_dict()
        for k in ("gap", "dual_bound"):
            d[k] = _num(d[k])
        if "kkt" in d:
            d["kkt"] = {k: _num(v) for k, v in d["kkt"].items()}
        return d

    def _mpcc_dict(self) -> dict:
        out = {}
        if self.schedule is not None:
            out["schedule"] = [{"eps": r["eps"], "objective": _num(r["objective"]), "max_regret": _num(r["max_regret"]),
                                "bound": _num(r["bound"])} for r in self.schedule]
        if self.exact_objective is not None:
            out["exact_objective"] = _num(self.exact_objective)
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def menu(self, pandas: bool = False):
        """The contract menu: one row per type (a list of dicts, or a DataFrame with ``pandas=True``)."""
        rows = [{k: v + 0.0 if isinstance(v, float) else v for k, v in r.items()} for r in self.menu_rows]  # no -0.0
        if pandas:
            return _pandas().DataFrame(rows)
        return rows

    def menu_csv(self) -> str:
        """The menu as CSV text: one row per type; binding rows joined by spaces, prices as ``id=value``."""
        import csv
        import io

        rows = self.menu_rows
        buf = io.StringIO()
        if not rows:
            return ""
        cols = list(dict.fromkeys(c for r in rows for c in r))
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            cells = []
            for c in cols:
                v = r.get(c)
                if c == "binding":
                    cells.append(" ".join(map(str, v or [])))
                elif c == "prices":
                    cells.append(" ".join(f"{k}={_csv_num(x)}" for k, x in (v or {}).items()))
                else:
                    cells.append(_csv_num(v))
            w.writerow(cells)
        return buf.getvalue()

    # ------------------------------------------------------------------ notebooks
    def to_pandas(self) -> dict:
        """DataFrames of the result: ``menu`` (one row per type), ``variables`` (variable, index, key, value),
        ``reports`` (report, index, key, value), ``duals`` (family, index, key, price) and, for an infeasible
        model, ``iis``.  Needs pandas (``pip install mechdsl[pandas]``)."""
        pd = _pandas()

        def long(table: dict, name: str, value: str):
            rows = [{name: n, "index": key_str(k), "key": k, value: v} for n, vals in table.items()
                    for k, v in vals.items()]
            return pd.DataFrame(rows, columns=[name, "index", "key", value])

        out = {"menu": pd.DataFrame(self.menu()),
               "variables": long(self.variables, "variable", "value"),
               "reports": long(self.reports, "report", "value"),
               "duals": long(self.duals, "family", "price")}
        if self.iis is not None:
            out["iis"] = pd.DataFrame([{k: v for k, v in m.items() if k != "text"} for m in self.iis])
        return out

    def __repr__(self) -> str:
        parts = [f"status={self.status!r}"]
        if self.objective is not None:
            parts.append(f"{self.sense} {self.objective_name}={_short(self.objective)}")
        if self.problem_class:
            parts.append(f"{self.problem_class} by {self.solver}" if self.solver else self.problem_class)
        ver = self.verification
        if ver is not None:
            parts.append("verified" if ver.ok else "verification FAILED")
        if self.menu_rows:
            parts.append(f"menu: {len(self.menu_rows)} rows")
        nvals = sum(len(v) for v in self.variables.values())
        if self.variables:
            parts.append(f"{len(self.variables)} variable families ({nvals} values)")
        if self.reports:
            parts.append(f"{len(self.reports)} reports")
        if self.iis:
            parts.append(f"IIS of {len(self.iis)} members")
        return "<Result " + ", ".join(parts) + ">"

    def _repr_html_(self, max_rows: int = 30, max_ids: int = 4) -> str:
        e = html.escape
        head = [f"<b>mechdsl result</b> &mdash; status <b>{e(self.status)}</b>"]
        if self.problem_class:
            head.append(f"{e(self.problem_class)}" + (f" solved by {e(self.solver)}" if self.solver else ""))
        lines = ["<div class='mechdsl-result'>", "<p>" + ", ".join(head) + "</p>"]
        if self.objective is not None:
            lines.append(f"<p>objective ({e(self.sense)} {e(self.objective_name)}): <b>{e(_short(self.objective))}"
                         "</b></p>")
        ver = self.verification
        if ver is not None:
            lines.append(f"<p>verification against the original constraints (tol {ver.tol:g}, {ver.checked} rows): "
                         f"<b>{'ok' if ver.ok else 'FAILED'}</b> &mdash; max_regret={ver.max_regret:.3g}, "
                         f"max_ir_violation={ver.max_ir_violation:.3g}, max_violation={ver.max_violation:.3g}</p>")
        if self.menu_rows:
            lines.append(_html_table(self.menu_rows, max_rows, max_ids))
        elif self.variables:
            cells = [f"{n}: {len(v)} value(s)" for n, v in self.variables.items()]
            lines.append("<p>variables: " + e(", ".join(cells)) + "</p>")
        if self.reports:
            lines.append("<p>reports: " + e(", ".join(f"{n} ({len(v)})" for n, v in self.reports.items())) + "</p>")
        if self.iis:
            items = "".join(f"<li><code>{e(m['text'])}</code></li>" for m in self.iis[:max_rows])
            more = f"<li>&hellip; +{len(self.iis) - max_rows} more</li>" if len(self.iis) > max_rows else ""
            lines.append(f"<p>irreducible infeasible subset ({len(self.iis)} members):</p><ul>{items}{more}</ul>")
        if self.notes:
            lines.append("<details><summary>notes</summary><ul>"
                         + "".join(f"<li>{e(n)}</li>" for n in self.notes) + "</ul></details>")
        lines.append("</div>")
        return "\n".join(lines)


def _csv_num(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        v = v + 0.0
        return repr(v) if math.isfinite(v) else ""
    return str(v)


def _short(v) -> str:
    if isinstance(v, float):
        return "0" if v == 0 else f"{v:.6g}"
    return str(v)


def truncate_ids(ids, prices=None, limit: int | None = 4) -> str:
    """``IC[1->2] IC[1->3] … +230 more``: at most ``limit`` ids (None: all), with prices when given."""
    prices = prices or {}
    ids = list(ids)
    shown = ids if limit is None else ids[:limit]
    cells = [f"{c}={_short(prices[c])}" if c in prices else str(c) for c in shown]
    if len(shown) < len(ids):
        cells.append(f"\u2026 +{len(ids) - len(shown)} more")
    return " ".join(cells)


def elide(rows: list, max_rows: int | None, tail: int = 3) -> tuple[list, int]:
    """The rows to show of a long table: the first ones and the last ``tail``; and how many were left out.
    ``None`` as the elided row marks the gap."""
    if max_rows is None or len(rows) <= max_rows:
        return list(rows), 0
    head = max(1, max_rows - tail)
    return list(rows[:head]) + [None] + list(rows[-tail:]), len(rows) - head - tail


def _html_table(rows: list[dict], max_rows: int, max_ids: int) -> str:
    e = html.escape
    cols = [c for c in dict.fromkeys(c for r in rows for c in r) if c not in ("binding", "prices")]
    out = ["<table><thead><tr>" + "".join(f"<th>{e(str(c))}</th>" for c in cols)
           + "<th>binding IC/IR (shadow price)</th></tr></thead><tbody>"]
    shown, hidden = elide(rows, max_rows)
    for r in shown:
        if r is None:
            out.append(f"<tr><td colspan='{len(cols) + 1}'>&hellip; {hidden} more rows &hellip;</td></tr>")
            continue
        out.append("<tr>" + "".join(f"<td>{e(_short(r.get(c)))}</td>" for c in cols)
                   + f"<td>{e(truncate_ids(r.get('binding', []), r.get('prices'), max_ids) or '-')}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _pandas():
    try:
        import pandas as pd
    except ImportError:
        raise MechError("error: this needs pandas, which is not installed: pip install 'mechdsl[pandas]' "
                        "(or pip install pandas)") from None
    return pd


# --------------------------------------------------------------------------- the model, in a notebook

def model_summary(model) -> dict:
    """What a spec declares (from its syntax tree: nothing is checked, bound or solved)."""
    from .syntax import ast

    items = getattr(model.module, "items", ())
    count = lambda cls: [i for i in items if isinstance(i, cls)]
    cons = count(ast.ConstraintDecl)
    obj = next((i for i in items if isinstance(i, ast.ObjectiveDecl)), None)
    return {"spec": str(model.path), "params": [i.name for i in count(ast.ParamDecl)],
            "types": [i.name for i in count(ast.TypeDecl)], "variables": [i.name for i in count(ast.VarDecl)],
            "constraints": [(c.kind, c.name) for c in cons],
            "objective": f"{obj.sense} {obj.name or 'objective'}" if obj is not None else None,
            "aux": [i.name for i in count(ast.AuxDecl)], "reports": [i.name for i in count(ast.ReportDecl)],
            "data": sorted(getattr(model, "_data", {}) or {})}


def model_repr(model) -> str:
    s = model_summary(model)
    parts = [f"{len(s['variables'])} variable families", f"{len(s['constraints'])} constraint families"]
    if s["types"]:
        parts.insert(0, "types " + ", ".join(s["types"]))
    if s["objective"]:
        parts.append(s["objective"])
    else:
        parts.append("no main problem")
    if s["data"]:
        parts.append(f"data for {len(s['data'])} params")
    return f"<Model {s['spec']!r}: " + ", ".join(parts) + ">"


def model_html(model) -> str:
    e = html.escape
    s = model_summary(model)
    rows = [("spec", s["spec"]), ("types", ", ".join(s["types"]) or "-"),
            ("params", _few(s["params"])), ("variables", _few(s["variables"]) or "-"),
            ("constraints", _few([f"{k} {n}" for k, n in s["constraints"]]) or "-"),
            ("objective", s["objective"] or "none (solve evaluates params, aux problems and reports)")]
    if s["aux"]:
        rows.append(("auxiliary problems", _few(s["aux"])))
    if s["reports"]:
        rows.append(("reports", _few(s["reports"])))
    if s["data"]:
        rows.append(("data / overrides", _few(s["data"])))
    body = "".join(f"<tr><th style='text-align:left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    return f"<div class='mechdsl-model'><b>mechdsl model</b><table>{body}</table></div>"


def _few(names: list, k: int = 12) -> str:
    return ", ".join(names[:k]) + (f" \u2026 +{len(names) - k} more" if len(names) > k else "")
