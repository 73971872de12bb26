"""Paper 003 (rental games with stagewise IR): continuous priors, systems of recurrences, the `stagewise` kind.

Every number is compared with an independent computation: exact fractions for U[0, 1] (tests/refs_rental.py),
a brute-force enumeration of menus with scipy LPs for the discrete game, closed forms for the prior functions.
"""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate

import mechdsl
from mechdsl.errors import MechError
from tests.refs_rental import (discrete_brute_force, uniform_fixed_rate, uniform_threshold,
                               uniform_threshold_float)

SPECS = Path(__file__).resolve().parents[1] / "specs"


def run(src, **over):
    return mechdsl.loads(src, overrides=over or None).solve()


def spec(name, **over):
    return mechdsl.load(SPECS / name, overrides=over or None).solve()


# ---------------------------------------------------------------- continuous priors
def test_prior_functions_match_closed_forms():
    src = """
    type v in [0, 1] ~ uniform;
    type w in [0, 2] ~ density(w / 2);
    param m = E[w](w);
    param m2 = E[w](w^2);
    param tail = E[v | v >= 0.5](v);
    param F = cdf(w, 1.2);
    param f = pdf(w, 1.2);
    param ph = phi(w, 1.2);
    param r = inf{v in [0, 1]: phibar(v) >= 0};
    param s = sup{x in [0, 1]: x^2 <= 0.5};
    param step = E[v](if v < 0.3 then 1 else 0) + E[v](max(v, 0.25));
    """
    p = run(src).parameters
    assert p["m"] == pytest.approx(4 / 3, rel=1e-14)
    assert p["m2"] == pytest.approx(2, rel=1e-14)
    assert p["tail"] == pytest.approx(0.75, rel=1e-14)
    assert p["F"] == pytest.approx(1.2 ** 2 / 4, rel=1e-13)
    assert p["f"] == pytest.approx(0.6, rel=1e-14)
    assert p["ph"] == pytest.approx(1.2 - (1 - 0.36) / 0.6, rel=1e-13)
    assert p["r"] == pytest.approx(0.5, abs=1e-11)                      # Myerson's reserve for U[0, 1]
    assert p["s"] == pytest.approx(math.sqrt(0.5), abs=1e-12)
    kink = integrate.quad(lambda x: max(x, 0.25), 0, 1, points=[0.25])[0]
    assert p["step"] == pytest.approx(0.3 + kink, abs=1e-10)


def test_ironing_of_an_irregular_density_matches_the_convex_hull():
    # A bimodal density on [0, 1]: its virtual value is not monotone, so phibar irons it.  Reference: the
    # convex hull of H(q) = int_0^q phi(F^-1(s)) ds computed here on a fine grid with scipy quadrature.
    dens = "(if w < 0.5 then 1.6 else 0.4)"
    src = f"""
    type w in [0, 1] ~ density{dens};
    param x[k in 1..9] = k / 10;
    param pb[k in 1..9] = phibar(w, x[k]);
    param p[k in 1..9] = phi(w, x[k]);
    """
    r = run(src).parameters
    f = lambda x: 1.6 if x < 0.5 else 0.4  # noqa: E731
    F = lambda x: 1.6 * x if x < 0.5 else 0.8 + 0.4 * (x - 0.5)  # noqa: E731
    Finv = lambda q: q / 1.6 if q < 0.8 else 0.5 + (q - 0.8) / 0.4  # noqa: E731
    phi = lambda x: x - (1 - F(x)) / f(x)  # noqa: E731
    qs = np.linspace(0, 1, 20001)
    h = np.array([phi(Finv(q)) for q in qs])
    H = np.concatenate([[0], np.cumsum((h[1:] + h[:-1]) / 2 * np.diff(qs))])
    hull = [0]
    for k in range(1, len(qs)):
        while len(hull) >= 2 and (H[hull[-1]] - H[hull[-2]]) * (qs[k] - qs[hull[-2]]) >= \
                (H[k] - H[hull[-2]]) * (qs[hull[-1]] - qs[hull[-2]]):
            hull.pop()
        hull.append(k)
    G = np.interp(qs, qs[hull], H[hull])
    g = np.gradient(G, qs)
    assert any(r["p"][(k,)] > r["p"][(k + 1,)] + 0.1 for k in range(1, 9))  # really irregular
    for k in range(1, 10):
        x = k / 10
        want = float(np.interp(F(x), qs, g))
        assert r["pb"][(k,)] == pytest.approx(want, abs=2e-3), x
    pb = [r["pb"][(k,)] for k in range(1, 10)]
    assert all(a <= b + 1e-12 for a, b in zip(pb, pb[1:]))  # ironed: non-decreasing


def test_a_density_that_does_not_integrate_to_one_is_a_located_error():
    with pytest.raises(MechError) as exc:
        mechdsl.loads("type w in [0, 2] ~ density(w);\nparam m = E[w](w);", filename="d.mech").solve()
    assert "d.mech:1:" in str(exc.value) and "integrates to 2" in str(exc.value)


@pytest.mark.parametrize("src, what", [
    ("param x[k in [0, 1]] = 1;", "cannot be an index set"),
    ("type v in [0, 1] ~ uniform;\nvar y >= 0;\nmaximize E[v](y * v);", "quadrature"),
    ("type v in [0, 1] ~ uniform;\nparam a = phi(v);", "needs the value of 'v'"),
    ("param a = cdf(3);", "must name a continuous type"),
    ("param a = inf{k in 1..3: k > 1};", "ranges over a real interval"),
])
def test_misuse_of_continuous_types_is_a_located_error(src, what):
    with pytest.raises(MechError) as exc:
        mechdsl.loads(src, filename="c.mech").solve()
    assert what in str(exc.value) and "c.mech:" in str(exc.value)


# ---------------------------------------------------------------- recurrences
def test_a_system_of_recurrences_is_evaluated_bottom_up():
    # a[n] and b[n] defined in terms of each other, b declared after a
    r = run("param N integer = 30;\n"
            "param a[n in 0..N] = if n == 0 then 1 else a[n-1] + b[n-1];\n"
            "param b[n in 0..N] = if n == 0 then 0 else a[n-1];\n").parameters
    x, y = 1, 0
    for _ in range(30):
        x, y = x + y, x
    assert r["a"][(30,)] == x and r["b"][(30,)] == y


def test_a_forward_reference_outside_a_cycle_is_a_use_before_declaration():
    with pytest.raises(MechError) as exc:
        mechdsl.loads("param a[n in 1..3] = b[n];\nparam b[n in 1..3] = n;", filename="f.mech").solve()
    assert "f.mech:1:" in str(exc.value) and "used before its declaration" in str(exc.value)


def test_a_cycle_across_two_params_is_a_located_error():
    with pytest.raises(MechError) as exc:
        mechdsl.loads("param a[n in 1..3] = b[n] + 1;\nparam b[n in 1..3] = a[n];", filename="g.mech").solve()
    assert "g.mech:" in str(exc.value) and "cycle" in str(exc.value)


def test_param_recurrence_of_depth_a_million():
    r = run("param H integer = 1000000;\nparam R[h in 0..H] = if h == 0 then 0 else R[h-1] + 1;\nreport r = R[H];")
    assert r.reports["r"][()] == 1000000


# ---------------------------------------------------------------- rental_uniform (Algorithm 4, Lemma 7.1)
def test_rental_uniform_matches_exact_fractions():
    H = 12
    ref = uniform_threshold(H)
    r = spec("rental_uniform.mech", H=H)
    p = r.parameters
    assert p["R"][(4,)] == pytest.approx(17 / 8, rel=1e-14)
    assert p["theta"][(4,)] == pytest.approx(0.5, abs=1e-10)
    assert p["R_fr"][(4,)] == 2
    for h in range(1, H + 1):
        assert p["R"][(h,)] == pytest.approx(float(ref["R"][h]), rel=1e-12), h
        if h >= 2:
            assert p["theta"][(h,)] == pytest.approx(float(ref["theta"][h] or 0), abs=1e-10), h
    fr = uniform_fixed_rate(H)
    assert all(p["R_fr"][(h,)] == pytest.approx(float(fr[h]), rel=1e-14) for h in range(H + 1))


def test_rental_uniform_long_horizon_ratio_tends_to_two():
    H = 3000
    r = spec("rental_uniform.mech", H=H)
    ref = uniform_threshold_float(H)
    daily = [r.reports["daily"][(h,)] for h in range(1, H + 1)]
    assert all(a <= b + 1e-12 for a, b in zip(daily, daily[1:]))          # Lemma 6.8
    assert r.parameters["R"][(H,)] == pytest.approx(ref["R"][H], rel=1e-10)
    ratio = [r.reports["ratio"][(h,)] for h in (10, 100, 1000, H)]
    assert all(a < b for a, b in zip(ratio, ratio[1:])) and 1.95 < ratio[-1] < 2     # Corollary 7.5


def test_rental_fixed_rate_algorithm_3_matches_the_reference():
    H = 8
    for alpha, b in ((1, -1), (1, 0), (0, 1), (1, 1)):
        r = spec("rental_fixed_rate.mech", H=H, alpha=alpha, beta=b)
        ref = uniform_fixed_rate(H, alpha=alpha, b=b)
        for h in range(1, H + 1):
            assert r.parameters["R"][(h,)] == pytest.approx(float(ref[h]), rel=1e-9, abs=1e-12), (alpha, b, h)
    lemma = spec("rental_uniform.mech", H=H).parameters["R_fr"]
    alg3 = spec("rental_fixed_rate.mech", H=H).parameters["R"]
    assert all(lemma[(h,)] == pytest.approx(alg3[(h,)], rel=1e-12) for h in range(1, H + 1))  # Lemma 7.1


# ---------------------------------------------------------------- rental_discrete (the stagewise kind)
def _menus(r, H, K):
    out = {}
    for h in range(1, H + 1):
        out[h] = [(round(r.reports["l"][(h, k)]), [r.reports["pay"][(h, k, d)] for d in range(1, h + 1)])
                  for k in range(1, K + 1)]
    return out


def _check_menu(menu, val, h, stagewise: bool, tol=1e-7):
    """Stagewise IR day by day for every type, and truthfulness among the bids each type can place."""
    for k, (l, pay) in enumerate(menu):
        assert all(p >= -tol for p in pay) and all(abs(p) <= tol for p in pay[l:])  # unpaid after the rental
        if stagewise:
            for d in range(1, l + 1):
                assert d * val[k] - sum(pay[:d]) >= -tol, (h, k, d)
        else:
            assert l * val[k] - sum(pay) >= -tol
    for j in range(len(menu)):
        lj, pj = menu[j]
        for k in range(len(menu)):
            lk, pk = menu[k]
            f = max((sum(pk[:d]) / d for d in range(1, lk + 1)), default=0.0)
            if stagewise and val[j] < f - tol:
                continue  # j cannot place k's bid
            if stagewise and abs(val[j] - f) <= tol:
                continue  # on the filter's boundary: the supremum of the strict filter excludes it
            assert lj * val[j] - sum(pj) >= lk * val[j] - sum(pk) - tol, (h, j, k)


@pytest.mark.parametrize("alpha, beta", [(1, -1), (0, 1), (1, 0)])
def test_rental_discrete_matches_brute_force(alpha, beta):
    val, q, H = [1, 2, 3], [0.3, 0.4, 0.3], 4
    got = {}
    for payment, kind in ((1, "stagewise"), (2, "fixed"), (3, "overall")):
        r = spec("rental_discrete.mech", alpha=alpha, beta=beta, payment=payment)
        ref = discrete_brute_force(val, q, H, alpha, beta, payment=kind)
        R = [r.parameters["R"][(h,)] for h in range(H + 1)]
        assert R == pytest.approx(ref["R"], abs=1e-7), kind
        for h, menu in _menus(r, H, 3).items():
            _check_menu(menu, val, h, stagewise=payment != 3)
        got[kind] = R
    if beta >= 0:  # welfare and revenue: fixed rates lose nothing (Corollary 5.4)
        assert got["stagewise"] == pytest.approx(got["fixed"], abs=1e-7)
    else:  # consumer surplus: general menus beat fixed rates from some horizon on (Corollary 7.3)
        gain = [s - f for s, f in zip(got["stagewise"], got["fixed"])]
        assert gain[:4] == pytest.approx([0, 0, 0, 0], abs=1e-7) and gain[4] > 0.2


def test_rental_discrete_optimal_menus_have_threshold_form():
    r = spec("rental_discrete.mech")
    menu = _menus(r, 4, 3)[4]
    for l, pay in menu:
        assert all(abs(p) <= 1e-7 for p in pay[1:])  # a fee on day 1 and 0 afterwards
    assert [l for l, _ in menu] == [1, 1, 4]
    assert menu[2][1][0] == pytest.approx(2, abs=1e-7)  # the threshold: type 2 (value 2) is filtered out


def test_rental_discrete_margin_approaches_the_supremum():
    r0 = spec("rental_discrete.mech").parameters["R"][(4,)]
    r1 = spec("rental_discrete.mech", delta=1e-3).parameters["R"][(4,)]
    ref = discrete_brute_force([1, 2, 3], [0.3, 0.4, 0.3], 4, 1, -1, delta=1e-3)["R"][4]
    assert r1 == pytest.approx(ref, abs=1e-7) and r1 < r0 and r0 - r1 < 1e-2


def test_plot_draws_menus_per_horizon(tmp_path):
    from mechdsl.plot import plot_menu

    r = spec("rental_discrete.mech", H=3)
    out = tmp_path / "menus.png"
    panels = plot_menu(r, out)
    assert panels == ["R", "l", "pay", "daily"] and out.stat().st_size > 10_000


def test_a_discretised_continuous_type_converges_as_the_grid_is_refined():
    src = """
    param N integer >= 1 = 10;
    type v in [0, 1] ~ uniform grid N;
    var x[t in v] >= 0, <= 1;
    var p[t in v];
    utility U(t, r) = t * x[r] - p[r];
    ic IC[t in v, r in v: t != r]: U(t, t) >= U(t, r);
    ir IR[t in v]: U(t, t) >= 0;
    maximize Revenue: E[v](p[v]);
    """
    errors = []
    for n in (10, 40, 160):
        r = run(src, N=n)
        assert r.status == "optimal" and r.verification.ok
        # a posted price at a grid value (k - 1/2)/N, sold with probability (N - k + 1)/N: exact, by enumeration
        best = max(Fraction(2 * k - 1, 2 * n) * Fraction(n - k + 1, n) for k in range(1, n + 1))
        assert r.objective == pytest.approx(float(best), abs=1e-9)
        errors.append(abs(r.objective - 0.25))
    assert errors[0] > errors[1] > errors[2] and errors[2] <= 1 / (4 * 160) + 1e-12  # first order in the cell width


# ---------------------------------------------------------------- review findings (each was wrong or crashed)
@pytest.mark.parametrize("src, name, want", [
    ("type v in [0, 1] ~ uniform;\nvar x >= 0, <= 1;\nmaximize x;", None, 1.0),          # a menu with a continuous type
    ("type v in [0, 1] ~ uniform;\nvar x >= 0, <= 10;\nconstraint c: x >= E[v](v);\nminimize x;", None, 0.5),
    ("type v in [0, 1] ~ uniform;\ntype w in [0, 1] ~ uniform;\n"
     "param b[i in 1..3] = inf{v in [0, 1]: iron(w, -w*v, 0.3) + iron(w, -w*cdf(v), 0.3) <= -i/8};\nreport r = b[2];",
     "r", 0.25),                                                                           # iron's cache key
    ("param a = inf{x in [0, 1]: max(0, 0.1 - abs(x - 0.6)) >= 0.05};\nreport r = a;", "r", 0.55),   # kinked margin
    ("param b = sup{x in [0, 1]: max(0, 0.1 - abs(x - 0.6)) >= 0.05};\nreport r = b;", "r", 0.65),
    ("param n[j in 1..257] = inf{x in [0, 1]: x >= j/100 + 0.5 and x <= 2};\nreport r = n[3];", "r", 0.53),
    ("type v in [0, 1] ~ uniform;\nparam m = E[v](sum{k in 1..3} (if k/4 <= v then 1 else 0));\nreport r = m;", "r", 1.5),
    ("type v in [0, 1] ~ uniform;\ntype w in [0, 1] ~ uniform;\nparam m = E[v](E[w](v*w));\nreport r = m;", "r", 0.25),
    ("param R[h in 0..3] = if h == 0 then 0 else theta[h] + R[h-1];\nparam c = 2;\n"
     "param theta[h in 1..3] = c + R[h-1];\nreport r = R[3];", "r", 14),                   # bound at the last member
])
def test_review_findings(src, name, want):
    r = run(src)
    got = r.objective if name is None else r.reports[name][()]
    assert got == pytest.approx(want, abs=1e-9)


def test_data_for_a_member_of_a_system_of_recurrences_is_used():
    src = ("param R[h in 0..3] = if h == 0 then 0 else theta[h] + R[h-1];\n"
           "param theta[h in 1..3] = 1 + R[h-1];\nreport r = R[3];")
    assert run(src).reports["r"][()] == 7
    assert run(src, theta=[10, 10, 10]).reports["r"][()] == 30


def test_a_virtual_value_where_the_density_is_zero_is_a_located_error():
    src = "type w in [0, 1] ~ density(if w < 0.5 then 0 else 2);\n"
    # on the support [0.5, 1]: F = 2(x - 1/2), phi = 2x - 1, increasing, so phibar = phi; ironing starts where
    # the mass starts (F^-1(0) = 1/2, not 0)
    r = mechdsl.loads(src + "param r = phibar(w, 0.7);\nparam s = iron(w, -w, 0.7);\nreport r; report s;").solve()
    assert r.reports["r"][()] == pytest.approx(0.4, abs=1e-12)
    assert r.reports["s"][()] == pytest.approx(-0.75, abs=1e-12)     # -w ironed: its mean on the support
    with pytest.raises(MechError) as exc:
        mechdsl.loads(src + "param r = phi(w, 0.2);", filename="z.mech").solve()
    assert "z.mech:2:" in str(exc.value) and "not a finite number" in str(exc.value)


@pytest.mark.parametrize("clause, what", [("payment 7", "menu_payment_is_1_2_or_3"),
                                          ("margin -1", "menu_margin_is_nonnegative")])
def test_stagewise_rejects_bad_payment_and_margin(clause, what):
    from mechdsl.mechanisms.stagewise import EXAMPLE

    with pytest.raises(MechError) as exc:
        mechdsl.loads(EXAMPLE.replace("days 2;", f"days 2 {clause};"), filename="s.mech").solve()
    assert "s.mech:5:" in str(exc.value) and what in str(exc.value)

