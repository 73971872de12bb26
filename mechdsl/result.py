"""The result of a solve, in the spec's terms (a menu per type), and its JSON form."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any


def key_str(key: tuple) -> str:
    """Index tuple -> JSON key: joined by ',' ('' for scalars)."""
    return ",".join(str(k) for k in key)


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
    return _num(v)


def _aux_dict(r: dict) -> dict:
    out = {"status": r.get("status"), "feasible": r.get("feasible"), "objective": _num(r.get("objective"))}
    if r.get("vars"):
        out["variables"] = {n: {key_str(k): _num(x) for k, x in vals.items()} for n, vals in r["vars"].items()}
    return out


@dataclass
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
            "variables": {n: {key_str(k): _num(x) for k, x in vals.items()} for n, vals in self.variables.items()},
            "parameters": params,
            "verification": self._verification_dict(),
            "duals": {n: {key_str(k): _num(x) for k, x in vals.items()} for n, vals in self.duals.items()},
            "reports": {n: {key_str(k): _value(x) for k, x in vals.items()} for n, vals in self.reports.items()},
            "aux": {label: _aux_dict(r) for label, r in self.aux.items()},
        } | self._mpcc_dict()

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
        if pandas:
            import pandas as pd  # optional dependency
            return pd.DataFrame(self.menu_rows)
        return [dict(r) for r in self.menu_rows]
