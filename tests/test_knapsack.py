"""Paper 002 (knapsack contracts) and the textbook moral-hazard case: hidden actions as aux families, the MSKC
LP with dominance, and exact policy values.

Every number is compared with tests/refs_knapsack.py, written independently of mechdsl: min-pay LPs by
vertex enumeration in fractions (and scipy), the MSKC LP by scipy and by a hull greedy, the policies by
brute force over all sequences and size realisations, and a Monte Carlo simulation with a fixed seed.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import mechdsl
from tests import refs_knapsack as ref

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "knapsack_contracts.mech"
DATA = ROOT / "specs" / "data"


def _load(name):
    return ref.load_instance(DATA / name)


def _solve(inst: dict, **over):
    data = {k: inst[k] for k in ("n", "m", "NS", "nlev", "s", "f", "c", "v", "B")}
    data["mono"] = inst.get("mono", 1)
    data["use_ir"] = inst.get("use_ir", inst.get("ir", 1))
    data.update(over)
    return mechdsl.load(SPEC, overrides=data).solve()


def _tmin(inst, mono=1, ir=1):
    return ref.tmin_table(inst["n"], inst["nlev"], inst["f"], inst["c"], mono, ir)


@pytest.mark.parametrize("name", ["knapsack_K1.toml", "knapsack_K3.toml", "knapsack_K1F.toml"])
def test_min_pay_contracts_equal_exact_vertex_enumeration(name):
    inst = _load(name)
    r = _solve(inst)
    rep = r.reports
    for i in range(inst["n"]):
        for j in range(inst["nlev"][i]):
            val, t = ref.min_pay(inst["f"][i], inst["c"][i], inst["nlev"][i], j, inst.get("mono", 1), 1)
            key = (i + 1, j + 1)
            assert rep["implementable"][key] == (0 if val is None else 1)
            if val is None:
                assert key not in rep["tmin"]
                continue
            assert rep["tmin"][key] == pytest.approx(float(val), abs=1e-9)
            got = [rep["contract"][(i + 1, j + 1, k + 1)] for k in range(inst["NS"])]
            # the canonical contract: the least total pay among the optimal ones (the declared tie-break)
            assert sum(got) == pytest.approx(float(sum(t)), abs=1e-8)
            fj = inst["f"][i][j]
            assert sum(p * x for p, x in zip(fj, got)) == pytest.approx(float(val), abs=1e-8)


def test_an_unimplementable_level_is_reported_and_the_run_continues():
    proc = subprocess.run([sys.executable, "-m", "mechdsl", "solve", str(SPEC), "--data",
                           str(DATA / "knapsack_K1.toml"), "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "evaluated"
    reports = out["reports"]
    for name in ("implementable", "tmin", "w", "mu", "alpha", "lp_value", "skc_single", "v_nonadaptive",
                 "v_stopping", "v_adaptive", "v_ordered", "dominated", "lp_hull_value", "lp_fractional_items"):
        assert name in reports, name
    assert 0 in reports["implementable"].values()


def test_the_three_readings_of_constraint_1_give_the_reference_values():
    inst = _load("knapsack_K1.toml")
    tables = {}
    for mono in (1, 0, -1):
        r = _solve(inst, mono=mono)
        want = _tmin(inst, mono)
        got = {}
        for i in range(inst["n"]):
            for j in range(inst["nlev"][i]):
                key = (i + 1, j + 1)
                assert r.reports["implementable"][key] == (0 if want[i][j] is None else 1), (mono, key)
                if want[i][j] is not None:
                    assert r.reports["tmin"][key] == pytest.approx(float(want[i][j]), abs=1e-9), (mono, key)
                    got[key] = r.reports["tmin"][key]
        tables[mono] = got
    differs = [k for k in tables[1] if k in tables[0] and abs(tables[1][k] - tables[0][k]) > 1e-9
               or k in tables[-1] and abs(tables[1][k] - tables[-1][k]) > 1e-9]
    assert differs, "some level's min pay must depend on the reading of (1)"


def test_ir_binds_for_single_level_jobs():
    inst = _load("knapsack_K3.toml")
    r = _solve(inst)
    for i in range(inst["n"]):
        assert r.reports["tmin"][(i + 1, 1)] == pytest.approx(inst["c"][i][0], abs=1e-9)  # pay the cost exactly
    r0 = _solve(inst, use_ir=0)
    assert all(r0.reports["tmin"][(i + 1, 1)] == pytest.approx(0, abs=1e-9) for i in range(inst["n"]))


@pytest.mark.parametrize("name", ["knapsack_K1.toml", "knapsack_K3.toml", "knapsack_K1F.toml"])
def test_mskc_lp_dominance_and_policy_values(name):
    inst = _load(name)
    n, nlev, s, f, v, B = (inst[k] for k in ("n", "nlev", "s", "f", "v", "B"))
    r = _solve(inst)
    rep = r.reports
    tmin = _tmin(inst, inst.get("mono", 1))
    w, mu = ref.mskc_params(n, nlev, s, f, v, tmin, B)
    for i in range(n):
        for j in range(nlev[i]):
            if tmin[i][j] is not None:
                assert rep["w"][(i + 1, j + 1)] == pytest.approx(float(w[i][j]), abs=1e-9)
                assert rep["mu"][(i + 1, j + 1)] == pytest.approx(float(mu[i][j]), abs=1e-12)
    alpha, _ = ref.ior(n, nlev, s, f, v, tmin)
    assert rep["alpha"][()] == pytest.approx(float(alpha), abs=1e-9)
    lp, _ = ref.mskc(w, mu, B)
    greedy, dominated, _ = ref.hull_greedy(w, mu, B)
    assert rep["lp_value"][()] == pytest.approx(lp, abs=1e-8)
    assert rep["lp_value"][()] == pytest.approx(float(greedy), abs=1e-8)
    assert rep["lp_hull_value"][()] == pytest.approx(rep["lp_value"][()], abs=1e-9)   # the reduced model
    for i in range(n):
        for j in range(nlev[i]):
            if tmin[i][j] is None:
                continue
            ours = rep["dominated"][(i + 1, j + 1)]
            assert (ours != 0) == (j in dominated.get(i, {})), (i, j)
    x = [[None if tmin[i][j] is None else rep["x_lp"][(i + 1, j + 1)] for j in range(len(tmin[i]))]
         for i in range(n)]
    ok, info = ref.lemma_3_2_structure(x, 1e-7, w, mu)
    assert ok, info
    assert rep["lp_fractional_items"][()] <= 1
    # policies, by brute force
    args = (n, nlev, s, f, v, tmin, B)
    want = {"v_adaptive": ref.v_fully_adaptive(*args), "v_ordered": ref.v_ordered_adaptive(*args),
            "v_nonadaptive": ref.v_non_adaptive(*args), "v_stopping": ref.v_stopping_time(*args)}
    for k, val in want.items():
        assert rep[k][()] == pytest.approx(float(val), abs=1e-9), k
    got = {k: rep[k][()] for k in want}
    assert got["v_adaptive"] >= got["v_stopping"] - 1e-12 >= got["v_nonadaptive"] - 2e-12
    assert got["v_ordered"] <= got["v_adaptive"] + 1e-12
    assert got["v_adaptive"] <= rep["lp_value"][()] + 1e-9                      # Lemma 3.7
    mc, se = ref.monte_carlo_adaptive(*args, seed=0, runs=100_000, return_stderr=True)
    assert abs(mc - got["v_adaptive"]) <= 4 * se + 1e-12


def _random_instance(rng: random.Random, n: int, m: int, NS: int) -> dict:
    s = [sorted(rng.sample([k / 20 for k in range(1, 30) if k != 20], NS)) for _ in range(n)]
    nlev = [rng.randint(1, m) for _ in range(n)]
    f, c = [], []
    for i in range(n):
        rows, costs = [], [0.0]
        for j in range(m):
            raw = [rng.randint(1, 9) for _ in range(NS)]
            tot = sum(raw)
            row = [x / tot for x in raw]
            row[-1] = 1 - sum(row[:-1])
            rows.append(row)
            if j:
                costs.append(costs[-1] + rng.choice([0.0, 0.05, 0.1, 0.2]))
        f.append(rows)
        c.append(costs)
    return dict(n=n, m=m, NS=NS, B=1.0, nlev=nlev, s=s, f=f, c=c, v=[rng.choice([0.5, 1.0, 1.5]) for _ in range(n)])


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=10 ** 6))
def test_policy_hierarchy_on_random_instances(seed):
    inst = _random_instance(random.Random(seed), n=2 + seed % 2, m=2, NS=2)
    if ref.partial_sums_hit_B(inst["n"], inst["s"], 1):
        return
    r = _solve(inst)
    rep = r.reports
    tmin = _tmin(inst)
    args = (inst["n"], inst["nlev"], inst["s"], inst["f"], inst["v"], tmin, 1)
    ad, st_, na, od = (rep[k][()] for k in ("v_adaptive", "v_stopping", "v_nonadaptive", "v_ordered"))
    assert ad == pytest.approx(float(ref.v_fully_adaptive(*args)), abs=1e-9)
    assert na == pytest.approx(float(ref.v_non_adaptive(*args)), abs=1e-9)
    assert ad >= st_ - 1e-12 and st_ >= na - 1e-12 and od <= ad + 1e-12
    assert ad <= rep["lp_value"][()] + 1e-9
    w, mu = ref.mskc_params(inst["n"], inst["nlev"], inst["s"], inst["f"], inst["v"], tmin, 1)
    assert rep["lp_value"][()] == pytest.approx(float(ref.hull_greedy(w, mu, 1)[0]), abs=1e-8)


def test_moral_hazard_optimal_contract_beats_the_best_linear_one():
    mh = dict(A=3, S=3, F=[[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.1, 0.2, 0.7]], c=[0.0, 0.3, 0.9], r=[0.0, 2.0, 3.0])
    r = mechdsl.load(ROOT / "specs" / "moral_hazard.mech").solve()           # the spec's defaults are mh
    rep = r.reports
    util, action, t = ref.best_contract(mh["F"], mh["c"], mh["r"])
    assert rep["value"][()] == pytest.approx(float(util), abs=1e-9)
    assert rep["action"][()] == action + 1
    got = [rep["contract"][(k + 1,)] for k in range(mh["S"])]
    assert sum(p * x for p, x in zip(mh["F"][action], got)) == pytest.approx(
        float(sum(p * x for p, x in zip(ref._fvec(mh["F"][action]), t))), abs=1e-9)
    lin, alpha, lin_action = ref.linear_contract(mh["F"], mh["c"], mh["r"])
    assert rep["linear_value"][()] == pytest.approx(float(lin), abs=1e-9)
    assert rep["linear_alpha"][()] == pytest.approx(float(alpha), abs=1e-9)
    assert rep["gain"][()] > 1e-6 and rep["non_monotone"][()] == 1
    # the main problem: the best action's contract, verified on IC against every other action and IR
    assert r.status == "optimal" and r.objective == pytest.approx(float(util), abs=1e-9)
    assert r.verification.ok and r.verification.max_regret <= 1e-9
    tt = [r.variables["t"][(k + 1,)] for k in range(mh["S"])]
    Ej = lambda a: sum(p * x for p, x in zip(mh["F"][a], tt)) - mh["c"][a]  # noqa: E731
    assert all(Ej(action) >= Ej(a) - 1e-9 for a in range(mh["A"]))          # the agent's regret, recomputed


def _sequence_value(seq, inst, tmin, B):
    """Expected profit of running the (agent, level) sequence until the first overflow: every size realisation."""
    from fractions import Fraction
    from itertools import product

    total = Fraction(0)
    s, f, v = inst["s"], inst["f"], inst["v"]
    for ks in product(range(inst["NS"]), repeat=len(seq)):
        p, used, gain = Fraction(1), Fraction(0), Fraction(0)
        for (i, j), k in zip(seq, ks):
            p *= Fraction(str(f[i][j][k]))
        for (i, j), k in zip(seq, ks):
            gain -= tmin[i][j]
            used += Fraction(str(s[i][k]))
            if used > Fraction(str(B)):
                break
            gain += Fraction(str(v[i]))
        total += p * gain
    return total


@pytest.mark.parametrize("name, B", [("knapsack_K1.toml", 1.0), ("knapsack_K1.toml", 0.55), ("knapsack_K3.toml", 0.7),
                                     ("knapsack_K1F.toml", 1.0)])
def test_skc_branches_equal_an_independent_evaluation(name, B):
    inst = _load(name)
    assert not ref.partial_sums_hit_B(inst["n"], inst["s"], B)
    r = _solve(inst, B=B)
    rep = r.reports
    tmin = _tmin(inst, inst.get("mono", 1))
    n, nlev = inst["n"], inst["nlev"]
    x = {(i, j): rep["x_lp"][(i + 1, j + 1)] for i in range(n) for j in range(nlev[i]) if tmin[i][j] is not None}
    w, mu = ref.mskc_params(n, nlev, inst["s"], inst["f"], inst["v"], tmin, B)
    items = [i for i in range(n) if sum(x.get((i, j), 0) for j in range(nlev[i])) > 1e-9]
    wv = {i: sum(x.get((i, j), 0) * float(w[i][j]) for j in range(nlev[i]) if (i, j) in x) for i in items}
    mv = {i: sum(x.get((i, j), 0) * float(mu[i][j]) for j in range(nlev[i]) if (i, j) in x) for i in items}
    assert rep["skc_single"][()] == pytest.approx(max(wv.values(), default=0), abs=1e-9)
    order = sorted(items, key=lambda i: (-wv[i] / mv[i], i))
    variants = [[]]
    for i in order:
        pos = sorted(((x[(i, j)], -j, j) for j in range(nlev[i]) if (i, j) in x and x[(i, j)] > 1e-9), reverse=True)
        choices = [pos[0][2]]
        if 1e-9 < pos[0][0] < 1 - 1e-9:  # the fractional item: its other choice, or the null choice
            choices.append(pos[1][2] if len(pos) > 1 else None)
        variants = [v + [(i, c)] for v in variants for c in choices] if len(choices) > 1 else \
            [v + [(i, choices[0])] for v in variants]
    best = max(_sequence_value([(i, j) for i, j in seq if j is not None], inst, tmin, B) for seq in variants)
    assert rep["skc_greedy"][()] == pytest.approx(float(best), abs=1e-9)
    assert rep["lp_fractional_items"][()] <= 1
