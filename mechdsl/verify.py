"""Verify a solution against the ORIGINAL constraints of the spec.

Stage: ``(Instance, Problem, values) -> Verification``.  Every instance of every
constraint family is evaluated at the solution in plain floating point, from
the IR as written (before any reduction or linearisation):

* ``max_regret``: the largest gain of any type from any misreport, i.e. the
  largest violation of an ``ic`` constraint (``rhs - lhs`` of ``lhs >= rhs``);
* ``max_ir_violation``: the same for ``ir`` constraints;
* ``max_violation``: every other constraint, variable bounds and integrality.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import sympy as sp

import numpy as np

from .evaluate import EvalError, Evaluator, ValuesTarget, VecTarget, VectorUnsupported, canon, flat_key
from .ir import nodes as ir
from .ir.ids import constraint_id  # re-exported: it used to live here


#: Largest stationarity residual |c + Qx - A^T y - z| at which the dual bound still counts as a bound.
DUAL_RESIDUAL_TOL = 1e-6


@dataclass
class Verification:
    max_regret: float = 0.0
    max_ir_violation: float = 0.0
    max_violation: float = 0.0
    ok: bool = True
    tol: float = 1e-6
    checked: int = 0
    worst: list = field(default_factory=list)  # (violation, constraint id, kind), largest first
    binding: dict = field(default_factory=dict)  # family -> list of (key, id) with zero slack
    gap: float | None = None         #: relative optimality gap |objective - dual_bound| / max(1, |objective|)
    dual_bound: float | None = None  #: a proved bound on the optimum (LP/QP duality, MILP branch and bound)
    kkt: dict = field(default_factory=dict)  #: residuals measured in numpy on the model as solved
    gap_tol: float | None = None
    uncertified: str | None = None  #: why an optimality certificate failed, when it did
    families: list = field(default_factory=list)  #: per IC/IR family: role, rows, worst violation, per agent

    @property
    def feasible(self) -> bool:
        """Every original constraint holds within ``tol``."""
        return max(self.max_regret, self.max_ir_violation, self.max_violation) <= self.tol

    def certify(self, cert, problem_class: str, gap_tol: float) -> None:
        """Fold an optimality certificate in: ``ok`` then also needs the gap within ``gap_tol``."""
        if cert is None:
            return
        self.kkt = {"primal_residual": cert.primal_residual, "dual_residual": cert.dual_residual,
                    "complementarity": cert.complementarity}
        self.dual_bound, self.gap, self.gap_tol = cert.dual_bound, cert.gap, gap_tol
        if cert.gap is not None and not (cert.gap <= gap_tol):
            self.ok = False
        # The dual bound is a bound only at a dual-feasible point: a stationarity residual voids the certificate.
        # (A MILP's bound is branch and bound's, not an LP dual: no stationarity residual to check.)
        if cert.gap is not None and problem_class not in ("MILP", "MIQP") and not (cert.dual_residual <= DUAL_RESIDUAL_TOL):
            self.ok = False
            self.uncertified = (f"optimality is not certified: the dual residual {cert.dual_residual:.3g} exceeds "
                                f"{DUAL_RESIDUAL_TOL:g}, so the dual bound is not a bound")

    def account(self, kind: ir.ConKind, violation: float):
        """Fold one violation into the figure of its constraint kind."""
        if kind == ir.ConKind.IC:
            self.max_regret = max(self.max_regret, violation)
        elif kind == ir.ConKind.IR:
            self.max_ir_violation = max(self.max_ir_violation, violation)
        else:
            self.max_violation = max(self.max_violation, violation)

    def to_dict(self) -> dict:
        out = {"max_regret": self.max_regret, "max_ir_violation": self.max_ir_violation,
               "max_violation": self.max_violation, "ok": self.ok, "gap": self.gap, "dual_bound": self.dual_bound}
        if self.kkt:
            out["kkt"] = dict(self.kkt)
        if self.families:
            out["families"] = [dict(f, by_agent={str(k): v for k, v in f["by_agent"].items()})
                               for f in self.families]
        return out


def verify(inst, problem: ir.Problem, values: dict, tol: float = 1e-6, bind_tol: float | None = None,
           var_names: set[str] | None = None, env: dict | None = None) -> Verification:
    """Evaluate every original constraint of ``problem`` at ``values``."""
    ev = _PopulationEvaluator(inst, ValuesTarget(values), values)
    if var_names is not None:
        ev._var_names = var_names
    if bind_tol is None:
        # "Binding" is informational (the menu): allow for solver residuals that scale with the solution.
        scale = max([1.0] + [abs(x) for vals in values.values() for x in vals.values() if math.isfinite(x)])
        bind_tol = max(tol, 1e-8 * scale)
    res = Verification(tol=tol)
    types = inst.mech.types
    type_dim = types[0].dim if types else None
    worst = []
    vec = VecTarget(inst, values)
    vev = Evaluator(inst, vec)
    vev._var_names = ev._var_names
    for c in problem.constraints:
        role = getattr(c, "role", None)
        apos = role.agent_position(c.domain.binders) if role is not None and c.domain is not None else None
        fast = _vector_family(c, vev, env or {}, bind_tol, apos)
        if fast is not None:
            worst_c, n, viol_max, bound, per_agent = fast
            if role is not None:
                res.families.append(_family_entry(c, role, n, viol_max, per_agent))
            res.checked += n
            cid = lambda key: constraint_id(c, key, type_dim)
            res.account(c.kind, viol_max)
            worst.extend((v, cid(k), c.kind.value) for v, k in worst_c if v > tol)
            res.binding[c.name] = [(k, cid(k)) for k in bound]
            continue
        local = dict(env or {})
        it = ev.iterate(c.domain.items, c.domain.cond, local) if c.domain else iter([local])
        binders = c.domain.binders if c.domain else ()
        bound = []
        per_agent, fam_max, fam_n = {}, 0.0, 0
        for _ in it:
            key = tuple(local[b] for b in binders)
            slack = _slack(c.body, ev, local, tol)
            res.checked += 1
            viol = max(0.0, -slack) if not math.isnan(slack) else math.inf
            fam_max, fam_n = max(fam_max, viol), fam_n + 1
            if apos is not None:
                per_agent[key[apos]] = max(per_agent.get(key[apos], 0.0), viol)
            cid = constraint_id(c, key, type_dim)
            res.account(c.kind, viol)
            if viol > tol:
                worst.append((viol, cid, c.kind.value))
            if abs(slack) <= bind_tol:
                bound.append((key, cid))
        res.binding[c.name] = bound
        if role is not None:
            res.families.append(_family_entry(c, role, fam_n, fam_max, per_agent))
    for v in problem.vars:
        lbs = Evaluator(inst)
        lbs._var_names = ev._var_names
        local = dict(env or {})
        it = lbs.iterate(v.domain.items, v.domain.cond, local) if v.domain else iter([local])
        for _ in it:
            key = tuple(local[b] for b in v.domain.binders) if v.domain else ()
            x = values[v.name][flat_key(key)]
            viol = 0.0
            if math.isnan(x):
                viol = math.inf
            if v.lb is not None:
                viol = max(viol, lbs.value(v.lb, local) - x)
            if v.ub is not None:
                viol = max(viol, x - lbs.value(v.ub, local))
            if v.kind in ("binary", "integer"):
                viol = max(viol, abs(x - round(x)))
            res.max_violation = max(res.max_violation, viol)
            if viol > tol:
                worst.append((viol, f"{v.name}[{','.join(map(str, key))}] bounds", "bound"))
    worst.sort(reverse=True)
    res.worst = worst[:10]
    res.ok = max(res.max_regret, res.max_ir_violation, res.max_violation) <= tol
    return res


class _PopulationEvaluator(Evaluator):
    """Numbers, with each expectation over a population evaluated for all its outcomes at once in numpy.

    The body of ``E[n | cond](body)`` is evaluated once with the population's counts bound to numpy columns
    (one entry per outcome satisfying ``cond``, which is decided outcome by outcome in plain floats) by a
    :class:`VecTarget` evaluator, and averaged with the outcome probabilities; the values are those of the
    scalar loop (the same IR, the same floating-point operations per outcome).  A body the vector target
    does not take falls back to the scalar loop.
    """

    def __init__(self, inst, target, values):
        super().__init__(inst, target)
        self._vec = _CountsVecEvaluator(inst, VecTarget(inst, values))

    def _expect(self, e):
        body, label, cond = e.args
        scalar = super()._expect(e)
        pops = getattr(self.inst, "populations", {})
        if label.name not in pops:
            return scalar
        keys, outcomes = pops[label.name]
        counts = np.array([[o[0][k] for k in keys] for o in outcomes], dtype=float).reshape(len(outcomes), len(keys))
        probs = np.array([o[1] for o in outcomes], dtype=float)
        cond = None if cond is sp.true else cond
        fc = self.compile(cond) if cond is not None else None
        self._vec._var_names = self._var_names
        fb = self._vec.compile(body)

        def run(env, pol):
            env2 = dict(env)
            if fc is None:
                sel = np.arange(len(outcomes))
            else:
                env2[label] = {k: counts[:, i] for i, k in enumerate(keys)}
                try:  # all outcomes at once (numpy comparisons); anything else: outcome by outcome
                    vec = fc(env2, 0)
                except (TypeError, ValueError, KeyError, EvalError):
                    vec = None
                ok = vec if isinstance(vec, np.ndarray) and vec.dtype == bool and vec.shape == (len(outcomes),) else []
            if fc is not None and isinstance(ok, np.ndarray):
                sel = np.flatnonzero(ok)
            elif fc is not None:
                for j, (value, _) in enumerate(outcomes):
                    env2[label] = value
                    ok.append(bool(fc(env2, 0)))
                sel = np.flatnonzero(ok)
            w = probs[sel]
            total = float(w.sum())
            if total <= 0:
                return scalar(env, pol)  # the scalar loop reports the error
            env2[label] = {k: counts[sel, i] for i, k in enumerate(keys)}
            try:
                with np.errstate(all="ignore"):
                    v = np.broadcast_to(np.asarray(fb(env2, 0), dtype=float), sel.shape)
            except (VectorUnsupported, TypeError, ValueError, EvalError, IndexError):
                return scalar(env, pol)
            return math.fsum((w / total) * v)
        return run


    def _expect_others(self, e):
        """E[v[-i]](body): the body evaluated once over all the others' profiles (numpy), as for populations."""
        body, label, cond, agent = e.args
        scalar = super()._expect_others(e)
        if cond is not sp.true:
            return scalar
        fi = self.compile(agent)
        self._vec._var_names = self._var_names
        fb = self._vec.compile(body)
        cache = {}

        def run(env, pol):
            i = canon(fi(env, 0))
            hit = cache.get(i)
            if hit is None:
                outcomes = self.inst.others_outcomes(label.name, i)
                arr = np.asarray([o[0] for o in outcomes], dtype=np.int64)
                probs = np.asarray([o[1] for o in outcomes], dtype=float)
                hit = cache[i] = (tuple(arr[:, k] for k in range(arr.shape[1])), probs)
            comps, probs = hit
            env2 = dict(env)
            env2[label] = comps
            try:
                with np.errstate(all="ignore"):
                    v = np.broadcast_to(np.asarray(fb(env2, 0), dtype=float), probs.shape)
            except (VectorUnsupported, TypeError, ValueError, EvalError, IndexError):
                return scalar(env, pol)
            return math.fsum(probs * v) / math.fsum(probs)
        return run


class _CountsVecEvaluator(Evaluator):
    """The vector evaluator, with a population's counts (bound by :class:`_PopulationEvaluator`) as arrays."""

    def _indexed(self, e):
        base = super()._indexed(e)
        label = e.base.label
        idx = [self.compile(a) for a in e.indices]

        def lookup(env, pol):
            counts = env.get(label)
            if isinstance(counts, dict):
                key = tuple(f(env, 0) for f in idx)
                if any(isinstance(k, np.ndarray) for k in key):
                    raise VectorUnsupported("population counts with vectorised indices")
                try:
                    return counts[flat_key(tuple(canon(k) for k in key))]
                except KeyError:
                    raise EvalError(f"{label}[{','.join(map(str, key))}] is outside the population's index set") from None
            return base(env, pol)
        return lookup


#: Families with fewer instances than this are checked one by one (no numpy set-up cost).
VECTOR_MIN = 2000


def _family_entry(c, role, n: int, worst: float, per_agent: dict) -> dict:
    return {"name": c.name, "kind": c.kind.value, "role": role.label, "rows": n, "max_violation": worst,
            "by_agent": dict(per_agent)}


def _vector_family(c: ir.ConstraintDef, vev: Evaluator, env: dict, bind_tol: float, apos: int | None = None):
    """Check a whole family at once with numpy, or return None to use the scalar path.

    Applies to plain relations (and conjunctions of them) over a domain of
    independent sets; every instance is still evaluated, only faster.
    """
    if c.domain is None or not isinstance(c.body, (ir.Rel, ir.AllOf)):
        return None
    rels = [c.body] if isinstance(c.body, ir.Rel) else list(c.body.parts)
    if not all(isinstance(r, ir.Rel) for r in rels):
        return None
    binders = c.domain.binders
    elems_per_item = []
    for bs, node in c.domain.items:
        if node.free_symbols & set(binders):
            return None
        try:
            elems_per_item.append(vev.set_elements(node, dict(env)))
        except Exception:
            return None
    total = 1
    for e in elems_per_item:
        total *= len(e)
    if total < VECTOR_MIN:
        return None
    # Broadcast: item j's binders vary along axis j.
    local = dict(env)
    shape = [len(e) for e in elems_per_item]
    axis_vals = []
    for j, ((bs, _), elems) in enumerate(zip(c.domain.items, elems_per_item)):
        view = [1] * len(shape)
        view[j] = len(elems)
        if elems and any(isinstance(x, tuple) for x in elems[0]):  # profiles: a tuple of arrays, one per entry
            if len(bs) != 1:
                return None
            arr = np.asarray([e[0] for e in elems], dtype=np.int64).reshape(len(elems), -1)
            local[bs[0]] = tuple(arr[:, k].reshape(view) for k in range(arr.shape[1]))
            axis_vals.append((True, arr))
            continue
        arr = np.array(elems, dtype=object if not all(isinstance(x, int) for t in elems for x in t) else np.int64)
        for d, b in enumerate(bs):
            local[b] = arr[:, d].reshape(view)
        axis_vals.append((False, arr))
    try:
        mask = np.ones(shape, dtype=bool)
        if c.domain.cond is not None:
            mask &= np.broadcast_to(np.asarray(vev.value(c.domain.cond, local), dtype=bool), shape)
        slack = np.full(shape, np.inf)
        for r in rels:
            a = np.broadcast_to(np.asarray(vev.value(r.lhs, local), dtype=float), shape)
            b = np.broadcast_to(np.asarray(vev.value(r.rhs, local), dtype=float), shape)
            s = a - b if r.op == ">=" else (b - a if r.op == "<=" else -np.abs(a - b))
            slack = np.minimum(slack, s)
    except (VectorUnsupported, TypeError, ValueError, EvalError, IndexError):
        return None
    slack = np.where(np.isnan(slack), -np.inf, slack)
    viol = np.where(mask, np.maximum(0.0, -slack), 0.0)

    def key_of(idx):
        key = []
        for j, i in enumerate(idx):
            prof, arr = axis_vals[j]
            if prof:
                key.append(tuple(arr[i].tolist()))
            else:
                key.extend(arr[i].tolist())
        return tuple(key)

    n = int(mask.sum())
    vmax = float(viol.max()) if viol.size else 0.0
    flat = np.argsort(viol, axis=None)[::-1][:10]
    worst = [(float(viol.flat[f]), key_of(np.unravel_index(f, shape))) for f in flat if viol.flat[f] > 0]
    bound_idx = np.argwhere(mask & (np.abs(slack) <= bind_tol))
    bound = [key_of(tuple(i)) for i in bound_idx[:100000]]
    per_agent = {}
    if apos is not None:  # the worst violation per agent: over every axis but the agent's
        k = 0
        for j, (bs, _) in enumerate(c.domain.items):
            if k <= apos < k + len(bs) and not axis_vals[j][0]:
                arr = axis_vals[j][1][:, apos - k]
                red = np.moveaxis(np.where(mask, viol, 0.0), j, 0).reshape(shape[j], -1).max(axis=1)
                for a, v in zip(arr.tolist(), red.tolist()):
                    per_agent[a] = max(per_agent.get(a, 0.0), v)
            k += len(bs)
    return worst, n, (math.inf if vmax == np.inf else vmax), bound, per_agent


def _slack(body, ev: Evaluator, env, tol) -> float:
    """How comfortably ``body`` holds: >= 0 when satisfied, minus the violation otherwise."""
    if isinstance(body, ir.Rel):
        a, b = float(ev.value(body.lhs, env)), float(ev.value(body.rhs, env))
        if body.op == ">=":
            return a - b
        if body.op == "<=":
            return b - a
        return -abs(a - b)
    if isinstance(body, ir.AllOf):
        return min(_slack(p, ev, env, tol) for p in body.parts)
    if isinstance(body, ir.AnyOf):
        return max(_slack(p, ev, env, tol) for p in body.parts)
    if isinstance(body, ir.Implication):
        if _holds(body.premise, ev, env, tol):
            return _slack(body.conclusion, ev, env, tol)
        return math.inf
    if isinstance(body, ir.Complementarity):
        a, b = float(ev.value(body.a, env)), float(ev.value(body.b, env))
        return min(a, b, -min(abs(a), abs(b)))
    raise AssertionError(type(body))  # pragma: no cover


def _holds(cond, ev: Evaluator, env, tol) -> bool:
    """Truth of a premise at the solution, up to ``tol``.

    A non-strict premise ``a <= b`` counts as holding up to ``a <= b + tol`` (more
    constraints are checked, not fewer); a strict one ``a > b`` only when
    ``a > b + tol``: the model negates it to the closed ``a <= b``, so at
    ``a == b`` the premise is false in the model and must be here too.
    """
    if isinstance(cond, sp.core.relational.Relational):
        a, b = float(ev.value(cond.lhs, env)), float(ev.value(cond.rhs, env))
        op = cond.rel_op
        if op == "<=":
            return a <= b + tol
        if op == ">=":
            return a >= b - tol
        if op == "<":
            return a < b - tol
        if op == ">":
            return a > b + tol
        if op == "==":
            return abs(a - b) <= tol
        return abs(a - b) > tol
    if isinstance(cond, sp.And):
        return all(_holds(c, ev, env, tol) for c in cond.args)
    if isinstance(cond, sp.Or):
        return any(_holds(c, ev, env, tol) for c in cond.args)
    return bool(ev.value(cond, env))
