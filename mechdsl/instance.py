"""Bind a mechanism to data.

Stage: ``Mechanism + data -> Instance``.  Sets are enumerated, params take
their values (spec defaults, overridden by ``--data`` and then ``--set``),
priors and populations are checked and enumerated, and results of auxiliary
problems are computed on first use (through the ``aux_solver`` callback given
by :mod:`mechdsl.api`, so this stage does not depend on the compilers).

Data is model-free and given by param name, as in AMPL: a scalar is a number;
an indexed param over a product of one-dimensional sets is a nested array in
index order; any other index set takes a flat array in set order, or a table
whose keys are the index tuples written ``"1,2"``.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Callable

import sympy as sp

from .data import DataSource, data_error
from .errors import DataError
import numpy as np

from .evaluate import DataTarget, EvalError, Evaluator, VecTarget, VectorUnsupported, canon, flat_key as _flatten
from .ir import nodes as ir
from . import continuous
from .ir.sym import HOLE, AuxRef, IInterval, IPower
from .span import Span

PROB_TOL = 1e-6
MAX_OUTCOMES = 2_000_000


class AuxUnavailable(EvalError):
    """A number was asked of an auxiliary problem that has none (it is infeasible, unbounded, failed)."""

    def __init__(self, message: str, result: dict):
        super().__init__(message)
        self.result = result


class _Need(BaseException):
    """Control flow of bottom-up evaluation: ``what`` (("param"|"aux", name, key)) is needed first.

    A BaseException, so that no ``except Exception`` on the way (vector fallbacks, solver wrappers) takes it:
    the driver (:meth:`Instance._recurrence_system` / :meth:`Instance.aux_result`) computes ``what`` and retries.
    """

    def __init__(self, what: tuple):
        super().__init__(what)
        self.what = what


class Instance:
    """A mechanism with all of its data: the input of the compilers and of verification."""

    def __init__(self, mech: ir.Mechanism, data: dict[str, tuple[Any, str]] | None = None,
                 aux_solver: Callable | None = None):
        self.mech = mech
        self.data = dict(data or {})  # name -> (raw value, where it came from)
        self.aux_solver = aux_solver
        self.sets: dict[str, list[tuple]] = {}
        self.params: dict[str, Any] = {}
        self.param_keys: dict[str, list[tuple]] = {}
        self.types: dict[str, tuple[list, list[float]]] = {}
        #: types per agent: name -> (agents, type values, probs[agent position][type position])
        self.agent_types: dict[str, tuple[list, list, list[list[float]]]] = {}
        self._others_cache: dict[tuple, list] = {}
        self._aux_keys: dict[str, dict] = {}
        self._pending: dict[str, dict] = {}  # params being defined by a recurrence: flat key -> binding
        self._aux_depth = 0
        self.populations: dict[str, tuple[list[tuple], list[tuple[dict, float]]]] = {}
        #: continuous types: name -> Prior; and the largest error estimate of their quadratures
        self.priors: dict[str, continuous.Prior] = {}
        self.quadrature_error = 0.0
        self.quadratures = 0
        self._groups = _recurrence_groups(mech, exclude=set(self.data))  # a param given data is not computed
        self._early: set = set()
        self.aux_results: dict[tuple[str, tuple], dict[str, float]] = {}
        self.aux_status: dict[tuple[str, tuple], str] = {}
        self._aux_active: set = set()
        self.var_names = {v.name for v in mech.problem.vars}
        known = {d.name for d in mech.data_decls}
        var_names = {v.name for v in mech.problem.vars}
        for name in sorted(set(self.data) & var_names):
            raise data_error(self.data[name][1], f"'{name}' is a decision variable, not a param; "
                             "only params take data (use 'init = ...' in the spec for a starting value)")
        unknown = sorted(set(self.data) - known)
        if unknown:
            from .errors import did_you_mean
            msgs = []
            for name in unknown:
                hint = did_you_mean(name, [p for p in mech.params])
                msgs.append(str(data_error(self.data[name][1], f"unknown param '{name}'" + (f" ({hint})" if hint else ""))))
            raise DataError("\n".join(msgs))
        for name, (_, where) in self.data.items():
            if not isinstance(mech.decl(name), ir.ParamDef):
                raise data_error(where, f"'{name}' is a {type(mech.decl(name)).__name__[:-3].lower()}, "
                                f"not a param; only params take data")
        self.ev = Evaluator(self, DataTarget())
        for decl in mech.data_decls:
            try:
                getattr(self, "_bind_" + type(decl).__name__)(decl)
            except EvalError as exc:
                if exc.span is None:
                    exc.span = decl.span
                raise

    # ------------------------------------------------------------ lookups
    def scalar(self, name: str):
        v = self.params.get(name)
        if v is None or isinstance(v, dict):
            if isinstance(v, dict):
                raise EvalError(f"param '{name}' is indexed and needs an index")
            raise EvalError(f"'{name}' has no value here")
        return v

    def indexed(self, name: str, key: tuple):
        table = self.params.get(name)
        if not isinstance(table, dict):
            raise EvalError(f"'{name}' is not an indexed param")
        key = _flatten(key)
        try:
            return table[key]
        except KeyError:
            pending = self._pending.get(name)
            if pending is not None and key in pending:
                raise _Need(("param", name, key)) from None  # a recurrence: computed first, then this retried
            raise EvalError(f"{name}[{','.join(map(str, key))}] is outside the index set of param '{name}'",
                            name=name) from None

    def set_elements(self, name: str) -> list[tuple]:
        if name in self.sets:
            return self.sets[name]
        if name in self.types:
            return [e if isinstance(e, tuple) else (e,) for e in self.types[name][0]]
        raise EvalError(f"set '{name}' is not available here")

    def outcomes(self, name: str):
        """(value, probability) pairs of a type or population."""
        if name in self.types:
            elems, probs = self.types[name]
            return list(zip(elems, probs))
        return self.populations[name][1]

    def aux_result(self, name: str, key: tuple, attr: str, args: tuple | None = None):
        """A result of auxiliary problem ``name[key]``: its objective, ``feasible``, or a variable's value.

        An aux that has no optimum (infeasible, unbounded) is a value, not an error: ``.feasible`` reads
        it.  Only a number it does not have (its objective, a variable) is an error, and names it.
        """
        key = _flatten(key)
        res = self.aux_results.get((name, key))
        label = f"{name}[{','.join(map(str, key))}]" if key else name
        if res is None:
            self._aux_nested(name, key)  # outside the index set: an error here, where it is used
            if self.aux_solver is None:
                raise EvalError(f"aux '{name}' cannot be solved here (no solver)")
            if self._aux_depth > 0:  # inside another aux's solve: the driver below computes it first
                raise _Need(("aux", name, key))
            self._aux_drive((name, key))
            res = self.aux_results[(name, key)]
        if attr == "feasible" and attr not in res.get("vars", {}):
            if res.get("feasible") is None:
                raise AuxUnavailable(f"whether auxiliary problem {label} is feasible is unknown: the solver "
                                     f"reported {res.get('status')} ({res.get('message', '')})", res)
            return bool(res["feasible"])
        if not res.get("ok", True):
            what = "its objective" if attr == "objective" else f"its variable '{attr}'"
            raise AuxUnavailable(f"auxiliary problem {label} is {res.get('status')}, so {what} has no value "
                                 f"here [{res.get('message', '')}]", res)
        if attr == "objective":
            return res["objective"]
        table = res["vars"][attr]
        k = _flatten(tuple(args or ()))
        try:
            return table[k]
        except KeyError:
            raise EvalError(f"{label}.{attr}[{','.join(map(str, k))}] is outside the index set of variable "
                            f"'{attr}' of aux '{name}'", name=attr) from None

    # ------------------------------------------------------------ binding
    def _bind_SetDef(self, d: ir.SetDef):
        elems = self.ev.set_elements(d.node)
        if len(set(elems)) != len(elems):
            raise EvalError(f"set '{d.name}' has repeated elements")
        self.sets[d.name] = elems

    def _aux_nested(self, name: str, key: tuple):
        """The binding of aux ``name`` at flat ``key`` (a profile binder takes a tuple)."""
        aux = self.mech.auxes[name]
        nested = self._aux_keys.get(name)
        if nested is None:
            nested = self._aux_keys[name] = {_flatten(k): k for k in self.ev.domain_keys(aux.domain)}
        if key not in nested:
            raise EvalError(f"{name}[{','.join(map(str, key))}] is outside the index set of aux '{name}'")
        return nested[key]

    def _aux_drive(self, target: tuple):
        """Solve aux ``target`` and, first, every aux result it needs, with an explicit stack: a recursion
        through aux problems (``A[h]`` using ``A[h-1].objective``) has no depth limit, and a cycle is an error."""
        stack, on_stack = [target], {target}
        while stack:
            name, key = stack[-1]
            if (name, key) in self.aux_results:
                on_stack.discard(stack.pop())
                continue
            aux = self.mech.auxes[name]
            env = dict(zip(aux.domain.binders, self._aux_nested(name, key))) if aux.domain else {}
            self._aux_depth += 1
            try:
                res = self.aux_solver(self, aux, key, env)
            except _Need as need:
                kind, n2, k2 = need.what
                if kind != "aux":
                    raise
                if (n2, k2) in on_stack:
                    cyc = stack[stack.index((n2, k2)):] + [(n2, k2)]
                    raise EvalError("auxiliary problems depend on each other in a cycle: " + " -> ".join(
                        f"{n}[{','.join(map(str, k))}]" if k else n for n, k in cyc), span=aux.span) from None
                stack.append((n2, k2))
                on_stack.add((n2, k2))
                continue
            finally:
                self._aux_depth -= 1
            res.setdefault("label", f"{name}[{','.join(map(str, key))}]" if key else name)
            self.aux_results[(name, key)] = res
            on_stack.discard(stack.pop())

    def _bind_agent_type(self, d: ir.TypeDef):
        agents = [e[0] if len(e) == 1 else e for e in self.ev.set_elements(d.agents)]
        base = self.ev.set_elements(d.node.base)
        if not agents:
            raise EvalError(f"the agent set of type '{d.name}' is empty")
        if not base:
            raise EvalError(f"the type set of '{d.name}' is empty")
        values = [b[0] for b in base]
        if d.prior_kind == "joint":
            return self._bind_joint_type(d, agents, values)
        if d.prior is None:
            probs = [[1.0 / len(values)] * len(values) for _ in agents]
        else:
            table = self.params[d.prior]
            per_agent = len(next(iter(table))) == 2 if table else False
            probs = []
            for a in agents:
                try:
                    row = [table[(a, v) if per_agent else (v,)] for v in values]
                except KeyError as exc:
                    raise EvalError(f"the prior '{d.prior}' has no value for {exc.args[0]}") from None
                _check_probs(row, f"the prior '{d.prior}' of type '{d.name}'" + (f" (agent {a})" if per_agent else ""))
                probs.append(row)
                if not per_agent:
                    probs = [row] * len(agents)
                    break
        if len(agents) * math.log10(max(len(values), 1)) > math.log10(MAX_OUTCOMES):
            raise EvalError(f"type '{d.name}' has {len(values)}^{len(agents)} = about "
                            f"1e{len(agents) * math.log10(max(len(values), 1)):.0f} profiles; the limit for exact "
                            f"expectations is {MAX_OUTCOMES}")
        self.agent_types[d.name] = (agents, values, probs)
        profiles, pr = [], []
        for combo in itertools.product(range(len(values)), repeat=len(agents)):
            profiles.append(tuple(values[c] for c in combo))
            pr.append(math.prod(probs[k][c] for k, c in enumerate(combo)))
        self.types[d.name] = (profiles, pr)

    def _bind_joint_type(self, d: ir.TypeDef, agents: list, values: list):
        """A joint prior over profiles: ``param g[w in V^N]`` gives each profile its probability."""
        table = self.params[d.prior]
        if len(agents) * math.log10(max(len(values), 1)) > math.log10(MAX_OUTCOMES):
            raise EvalError(f"type '{d.name}' has {len(values)}^{len(agents)} = about "
                            f"1e{len(agents) * math.log10(max(len(values), 1)):.0f} profiles; the limit for exact "
                            f"expectations is {MAX_OUTCOMES}")
        profiles = [tuple(c) for c in itertools.product(values, repeat=len(agents))]
        try:
            pr = [table[p] for p in profiles]
        except KeyError as exc:
            raise EvalError(f"the joint prior '{d.prior}' has no value for the profile {exc.args[0]}") from None
        _check_probs(pr, f"the joint prior '{d.prior}' of type '{d.name}'")
        self.agent_types[d.name] = (agents, values, None)  # None: not independent across agents
        self.types[d.name] = (profiles, pr)

    def others_outcomes(self, name: str, agent) -> list:
        """(profile with a hole at ``agent``, probability) pairs: the others' types, for E[v[-i]]."""
        hit = self._others_cache.get((name, agent))
        if hit is not None:
            return hit
        agents, values, probs = self.agent_types[name]
        if probs is None:
            raise EvalError(f"E[{name}[-{agent}]]: the prior of '{name}' is joint, so the others' types depend on "
                            f"agent {agent}'s own; write the interim expectation as E[{name} | {name}[i] == t](...)")
        try:
            k = agents.index(agent)
        except ValueError:
            raise EvalError(f"{agent} is not an agent of type '{name}'") from None
        others = [j for j in range(len(agents)) if j != k]
        out = []
        for combo in itertools.product(range(len(values)), repeat=len(others)):
            prof = [HOLE] * len(agents)
            p = 1.0
            for j, c in zip(others, combo):
                prof[j] = values[c]
                p *= probs[j][c]
            out.append((tuple(prof), p))
        self._others_cache[(name, agent)] = out
        return out

    def note_quadrature(self, err: float):
        self.quadratures += 1
        self.quadrature_error = max(self.quadrature_error, err)

    def _bind_continuous_type(self, d: ir.TypeDef):
        a, b = (self.ev.value(x) for x in d.node.args)
        density = None
        if d.density is not None:
            density_of = self.ev._along(d.density, sp.Symbol(d.name))
            density = lambda xs: density_of({}, xs)  # noqa: E731
        try:
            prior = continuous.Prior(d.name, float(a), float(b), density)
        except continuous.PriorError as exc:
            raise EvalError(str(exc), span=d.span) from None
        if d.grid is None:
            self.priors[d.name] = prior
            return
        n = self.ev.value(d.grid)
        if not float(n).is_integer() or not 1 <= n <= 1_000_000:
            raise EvalError(f"the grid of type '{d.name}' needs a whole number of cells from 1 to 10^6, got {n}",
                            span=d.span)
        edges = np.linspace(prior.a, prior.b, int(n) + 1)
        mids = (edges[:-1] + edges[1:]) / 2
        probs = np.diff(prior.cdf(edges))
        self.types[d.name] = ([canon(float(f"{x:.12g}")) for x in mids], [float(p) for p in probs])

    def _bind_TypeDef(self, d: ir.TypeDef):
        if isinstance(d.node, IInterval):
            return self._bind_continuous_type(d)
        if d.agents is not None:
            return self._bind_agent_type(d)
        elems = self.ev.set_elements(d.node)
        if not elems:
            raise EvalError(f"the type set of '{d.name}' is empty")
        if d.prior is None:
            probs = [1.0 / len(elems)] * len(elems)
        else:
            table = self.params[d.prior]
            try:
                probs = [table[e] for e in elems]
            except KeyError as exc:
                raise EvalError(f"the prior '{d.prior}' has no value for type {exc.args[0]}") from None
            _check_probs(probs, f"the prior '{d.prior}' of type '{d.name}'")
        values = [e[0] if len(e) == 1 else e for e in elems]
        self.types[d.name] = (values, probs)

    def _bind_PopulationDef(self, d: ir.PopulationDef):
        n = self.ev.value(d.count)
        if not float(n).is_integer() or n < 0:
            raise EvalError(f"the population size of '{d.name}' must be a nonnegative integer, got {n}")
        n = int(n)
        if d.source in self.types:
            elems, probs = self.types[d.source]
            keys = [e if isinstance(e, tuple) else (e,) for e in elems]
        else:
            keys = self.param_keys[d.source]
            probs = [self.params[d.source][k] for k in keys]
            _check_probs(probs, f"the probabilities '{d.source}' of population '{d.name}'")
        count = math.comb(n + len(keys) - 1, len(keys) - 1)
        if count > MAX_OUTCOMES:
            raise EvalError(f"population '{d.name}' has {count} outcomes (N={n}, {len(keys)} types); "
                            f"the limit for exact expectations is {MAX_OUTCOMES}")
        outcomes = []
        logp = [math.log(p) if p > 0 else -math.inf for p in probs]
        lgn = math.lgamma(n + 1)
        for comp in _compositions(n, len(keys)):
            lp = lgn
            zero = False
            for c, l in zip(comp, logp):
                if c:
                    if l == -math.inf:
                        zero = True
                        break
                    lp += c * l - math.lgamma(c + 1)
            if zero:
                continue
            outcomes.append((dict(zip(keys, comp)), math.exp(lp)))
        self.populations[d.name] = (keys, outcomes)

    def _bind_AuxDef(self, d: ir.AuxDef):
        self.ev.domain_keys(d.domain)  # validates the index set now; results are computed on use

    def _bind_ParamDef(self, d: ir.ParamDef):
        if d.name in self._early:
            return  # bound already: given data, and read by an earlier member of its system of recurrences
        if self.data and isinstance(d.value, sp.Basic) and d.domain is not None:
            for name in sorted(_names_in(d.value, set()) & set(self.data)):  # a later member given data
                later = self.mech.decl(name)
                if isinstance(later, ir.ParamDef) and name not in self.params and name != d.name:
                    self._early.add(name)
                    self._bind_ParamDef_now(later)
        self._bind_ParamDef_now(d)

    def _bind_ParamDef_now(self, d: ir.ParamDef):
        keys = self.ev.domain_keys(d.domain) if d.domain else [()]
        if keys and any(isinstance(c, tuple) for c in keys[0]):  # indexed by profiles: keys are flat
            keys = [_flatten(k) for k in keys]
        where = None
        if d.name in self.data:
            raw, where = self.data[d.name]
            values = self._from_data(d, keys, raw, where)
        elif isinstance(d.value, ir.ArrayValue):
            where = DataSource(str(d.value.span), d.value.span, self.mech.source)
            nums = _map_array(d.value.elements, lambda e: self.ev.value(e))
            values = self._from_data(d, keys, nums, where)
        elif d.value is not None:
            where = DataSource(str(d.span), d.span, self.mech.source)
            group = self._groups.get(d.name)
            if d.domain is None:
                values = {(): self._num(self.ev.value(d.value), d, where)}
            elif group is not None:  # defined in a cycle: bottom-up, with the other params of the cycle, bound at
                if d.name != group[-1]:  # the last one's declaration (when everything declared between is bound)
                    return
                return self._bind_group(group)
            else:
                values = self._vector_values(d, keys)
                if values is None:  # the scalar path: exact errors, any index set
                    values = {}
                    env: dict = {}
                    binders = d.domain.binders
                    for _ in self.ev.iterate(d.domain.items, d.domain.cond, env):
                        values[_flatten(tuple(env[b] for b in binders))] = self._num(self.ev.value(d.value, env),
                                                                                   d, where)
        else:
            raise EvalError(f"param '{d.name}' has no value; give one in the spec "
                            f"or with --set {d.name}=... or --data FILE.toml")
        self._check_domain(d, values, where)
        values = {_flatten(k): v for k, v in values.items()} if isinstance(values, dict) else values
        self.param_keys[d.name] = keys
        self.params[d.name] = values[()] if d.domain is None else values

    def _bind_group(self, names: list[str]):
        """Params defined in terms of each other (a system of recurrences, as R[h] and theta[h]): bound
        together, bottom-up, at the first one's declaration."""
        decls = [self.mech.decl(n) for n in names]
        wheres = [DataSource(str(d.span), d.span, self.mech.source) for d in decls]
        tables = self._recurrence_system(decls, wheres)
        for d, where in zip(decls, wheres):
            self._check_domain(d, tables[d.name], where)
            self.param_keys[d.name] = list(tables[d.name])
            self.params[d.name] = tables[d.name]

    def _recurrence_system(self, decls: list, wheres: list) -> dict:
        """Params defined in terms of themselves (and each other) at other indices, evaluated bottom-up with
        an explicit stack (no Python recursion, no depth limit): each value is computed once, after the
        values it needs."""
        by_name = {d.name: (d, w) for d, w in zip(decls, wheres)}
        nested, tables, fns = {}, {}, {}
        for d in decls:
            nested[d.name] = {_flatten(k): k for k in self.ev.domain_keys(d.domain)}
            tables[d.name] = {}
            self.params[d.name] = tables[d.name]
            self._pending[d.name] = nested[d.name]
            fns[d.name] = self.ev.compile(d.value)
        work = [(d.name, key) for d in decls for key in nested[d.name]]
        if len(decls) > 1:  # interleave by index (R[h-1] before theta[h] before R[h]): fewer retries
            try:
                rank = {d.name: k for k, d in enumerate(decls)}
                work.sort(key=lambda item: (item[1], rank[item[0]]))
            except TypeError:
                pass
        try:
            for name0, key in work:
                if key in tables[name0]:
                    continue
                top = (name0, key)
                stack, on_stack = [top], {top}
                while stack:
                    name, k = stack[-1]
                    dn, where = by_name[name]
                    try:
                        v = fns[name](dict(zip(dn.domain.binders, nested[name][k])), 0)
                    except _Need as need:
                        kind, name2, k2 = need.what
                        if kind != "param" or name2 not in by_name:
                            raise
                        item = (name2, k2)
                        if item in on_stack:
                            cyc = stack[stack.index(item):] + [item]
                            what = (f"param '{name}'" if len(decls) == 1 else
                                    "params " + ", ".join(f"'{x.name}'" for x in decls))
                            raise EvalError(f"{what} defined in a cycle: "
                                            + " -> ".join(f"{n}[{','.join(map(str, c))}]" for n, c in cyc),
                                            name=name, span=dn.span) from None
                        stack.append(item)
                        on_stack.add(item)
                        continue
                    tables[name][k] = self._num(v, dn, where)
                    on_stack.discard(stack.pop())
        finally:
            for d in decls:
                del self._pending[d.name]
        return {name: {k: t[k] for k in nested[name]} for name, t in tables.items()}  # in index order

    def _vector_values(self, d: ir.ParamDef, keys: list[tuple]) -> dict | None:
        """An indexed param's values from one vectorised evaluation over all keys, or None.

        None (use the scalar path) when the expression needs the scalar evaluator, or when any value is
        not finite: then the scalar path raises the located arithmetic error.
        """
        binders = d.domain.binders
        if len(keys) < 64 or not keys or len(keys[0]) != len(binders):
            return None
        try:
            cols = np.array(keys)
        except (ValueError, TypeError):
            return None
        if cols.dtype.kind not in "iuf":
            return None
        env = {b: cols[:, j] for j, b in enumerate(binders)}
        try:
            with np.errstate(all="ignore"):
                out = Evaluator(self, VecTarget(self)).value(d.value, env)
                arr = np.broadcast_to(np.asarray(out, dtype=float), (len(keys),))
        except (VectorUnsupported, EvalError, TypeError, ValueError):
            return None
        if not np.all(np.isfinite(arr)):
            return None
        return {k: (int(v) if v.is_integer() else v) for k, v in zip(keys, arr.tolist())}

    def _num(self, v, d, where):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise EvalError(f"param '{d.name}' must be a number, got {v!r}")
        return canon(float(v)) if float(v).is_integer() else float(v)

    def _from_data(self, d: ir.ParamDef, keys: list[tuple], raw, where: str) -> dict:
        label = f"param '{d.name}'"
        if d.domain is None:
            if isinstance(raw, (list, dict)):
                raise data_error(where, f"{label} is scalar but was given {_shape_name(raw)}")
            return {(): self._num_data(raw, where, label)}
        if isinstance(raw, dict):
            out = {}
            keyset = set(keys)
            for k, v in raw.items():
                key = tuple(canon(_parse_key_part(p, where, label)) for p in str(k).split(","))
                if key not in keyset:
                    raise data_error(where, f"{label}: key '{k}' is outside its index set")
                out[key] = self._num_data(v, where, f"{label}[{k}]")
            missing = [k for k in keys if k not in out]
            if missing:
                raise data_error(where, f"{label}: no value for index {','.join(map(str, missing[0]))}"
                                f" ({len(missing)} missing)")
            return out
        if not isinstance(raw, list):
            raise data_error(where, f"{label} is indexed over {len(keys)} element(s) and needs an array, "
                            f"got {raw!r}")
        shape = self._nested_shape(d)
        if shape is not None:
            _check_shape(raw, shape, where, label)
            flat = list(_flatten_nested(raw))
        else:
            if any(isinstance(v, list) for v in raw):
                raise data_error(where, f"{label}: its index set is not a product of simple sets; "
                                f"give a flat array of {len(keys)} values in set order")
            flat = raw
            if len(flat) != len(keys):
                raise data_error(where, f"{label} needs {len(keys)} value(s), got {len(flat)}")
        return {k: self._num_data(v, where, label) for k, v in zip(keys, flat)}

    def _nested_shape(self, d: ir.ParamDef):
        """Sizes per dimension when the index is a product of 1-D sets independent of each other."""
        if d.domain.cond is not None:
            return None
        sizes = []
        for binders, node in d.domain.items:
            if len(binders) != 1 or node.free_symbols & set(d.domain.binders):
                return None
            if isinstance(node, IPower):  # V^N: one dimension per agent
                base = self.ev.set_elements(node.base)
                sizes.extend([len(base)] * len(self.ev.set_elements(node.agents)))
                continue
            elems = self.ev.set_elements(node)
            if elems and len(elems[0]) != 1:
                return None
            sizes.append(len(elems))
        return sizes

    @staticmethod
    def _num_data(v, where, label):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise data_error(where, f"{label} must be a number, got {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            raise data_error(where, f"{label} must be finite, got {v!r}")
        if isinstance(v, int) and abs(v) > 2 ** 53:
            raise data_error(where, f"{label} = {v} is too large: integers beyond 2^53 are not exact as doubles")
        return canon(float(v)) if float(v).is_integer() else float(v)

    def _check_domain(self, d: ir.ParamDef, values: dict, where: str):
        bounds = [(op, self.ev.value(e)) for op, e in d.bounds]
        if d.numeric == "nonnegative":
            bounds.append((">=", 0))
        if d.numeric == "binary":
            bounds += [(">=", 0), ("<=", 1)]
        if not bounds and d.numeric not in ("integer", "binary"):
            return
        if len(values) > 64:  # vectorised: the loop below runs only to name a value at fault
            arr = np.fromiter(values.values(), dtype=float, count=len(values))
            ok = np.ones(len(arr), dtype=bool)
            if d.numeric in ("integer", "binary"):
                ok &= arr == np.round(arr)
            for op, b in bounds:
                ok &= {">=": arr >= b, "<=": arr <= b, ">": arr > b, "<": arr < b}[op]
            if ok.all():
                return
        for key, v in values.items():
            label = d.name + (f"[{','.join(map(str, key))}]" if key else "")
            if d.numeric in ("integer", "binary") and not float(v).is_integer():
                raise data_error(where, f"{label} = {v} is out of range: it must be an integer")
            for op, b in bounds:
                if ((op == ">=" and v < b) or (op == "<=" and v > b) or (op == ">" and v <= b)
                        or (op == "<" and v >= b)):
                    raise data_error(where, f"{label} = {v} is out of range: {d.name} {op} {b} is required")


def _names_in(obj, out: set):
    """The params and aux problems an IR object (an expression, a problem, a dataclass of them) reads."""
    if isinstance(obj, sp.Basic):
        for n in sp.preorder_traversal(obj):
            if isinstance(n, sp.Indexed):
                out.add(n.base.label.name)
            elif isinstance(n, AuxRef):
                out.add(n.args[0].name)
            elif isinstance(n, sp.Symbol):
                out.add(n.name)
    elif isinstance(obj, (tuple, list)):
        for x in obj:
            _names_in(x, out)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            if f.name != "span":
                _names_in(getattr(obj, f.name), out)
    return out


def _recurrence_groups(mech: ir.Mechanism, exclude=frozenset()) -> dict[str, list[str]]:
    """Indexed params defined in a cycle (through themselves, each other or aux problems, as R[h] =
    A[h].objective with A[h] reading R[h - l]): name -> the params of its cycle, in declaration order."""
    params = mech.params
    refs = {}
    for d in mech.data_decls:
        if isinstance(d, ir.ParamDef) and d.domain is not None and isinstance(d.value, sp.Basic) \
                and d.name not in exclude:
            refs[d.name] = _names_in(d.value, set())
        elif isinstance(d, ir.AuxDef):
            refs[d.name] = _names_in((d.problem, d.tiebreak), set())
    for k in refs:
        refs[k] &= set(refs)

    def reach(a):
        seen, todo = set(), [a]
        while todo:
            x = todo.pop()
            for y in refs.get(x, ()):
                if y not in seen:
                    seen.add(y)
                    todo.append(y)
        return seen
    reaches = {a: reach(a) for a in refs}
    order = [d.name for d in mech.data_decls if d.name in refs and d.name in params]
    return {a: [b for b in order if b == a or (b in reaches[a] and a in reaches[b])]
            for a in order if a in reaches[a]}


def _check_probs(probs, what):
    if any(p < 0 for p in probs):
        raise EvalError(f"{what} has a negative probability")
    s = sum(probs)
    if abs(s - 1) > PROB_TOL:
        raise EvalError(f"{what} sums to {s:.12g}, not 1")


def _compositions(n: int, k: int):
    """All k-tuples of nonnegative integers summing to n, in lexicographic order."""
    if k == 1:
        yield (n,)
        return
    for first in range(n, -1, -1):
        for rest in _compositions(n - first, k - 1):
            yield (first,) + rest


def _map_array(elements, fn):
    return [_map_array(e.elements, fn) if isinstance(e, ir.ArrayValue) else fn(e) for e in elements]


def _flatten_nested(a):
    for v in a:
        if isinstance(v, list):
            yield from _flatten_nested(v)
        else:
            yield v


def _check_shape(a, shape, where, label, depth=0):
    if not isinstance(a, list):
        raise data_error(where, f"{label}: wrong shape: expected an array of {shape[depth]} at depth {depth + 1}, "
                        f"got {a!r}")
    if len(a) != shape[depth]:
        dims = " x ".join(map(str, shape))
        raise data_error(where, f"{label}: wrong shape: expected {dims} values, got {len(a)} at depth {depth + 1}")
    for v in a:
        if depth + 1 < len(shape):
            _check_shape(v, shape, where, label, depth + 1)
        elif isinstance(v, list):
            dims = " x ".join(map(str, shape))
            raise data_error(where, f"{label}: wrong shape: expected {dims} values, got a deeper array")


def _shape_name(raw):
    return "an array" if isinstance(raw, list) else "a table"


def _parse_key_part(p: str, where, label):
    p = p.strip()
    try:
        return int(p)
    except ValueError:
        try:
            return float(p)
        except ValueError:
            return p  # a label (checked against the index set by the caller)
