"""Recurrences: params and aux families that refer to themselves at other indices, evaluated bottom-up
with an explicit stack (no depth limit), and cycles reported at the declaration."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest

import mechdsl
from mechdsl.errors import MechError


def run(src, **data):
    return mechdsl.loads(src, data=data or None).solve()


def test_param_recurrence_harmonic_numbers_exact():
    r = run("param H integer = 50;\nparam R[h in 0..H] = if h == 0 then 0 else R[h-1] + 1 / h;\nreport r = R[H];")
    assert r.reports["r"][()] == pytest.approx(float(sum(Fraction(1, h) for h in range(1, 51))), rel=1e-14)


def test_param_recurrence_deep_and_out_of_order():
    # R[h] needs R[h+1] (declared order is not evaluation order), 200000 levels deep
    src = ("param H integer = 200000;\n"
           "param R[h in 0..H] = if h == H then 0 else R[h+1] + 2;\n"
           "report r = R[0];")
    r = run(src)
    assert r.reports["r"][()] == 2 * 200000


def test_param_recurrence_two_terms_fibonacci():
    r = run("param F[n in 0..80] = if n <= 1 then n else F[n-1] + F[n-2];\nreport f = F[80];")
    a, b = 0, 1
    for _ in range(80):
        a, b = b, a + b
    assert r.reports["f"][()] == pytest.approx(a, rel=1e-15)


def test_param_recurrence_with_max_over_earlier_values():
    # a Bellman-style recurrence: V[h] = max over l of (l + V[h - l]) with a cost per step
    src = ("param H integer = 30;\n"
           "param V[h in 0..H] = if h == 0 then 0 else max{l in 1..h} (sqrt(l) + V[h - l]);\n"
           "report v = V[H];")
    V = [0.0]
    for h in range(1, 31):
        V.append(max(math.sqrt(l) + V[h - l] for l in range(1, h + 1)))
    assert run(src).reports["v"][()] == pytest.approx(V[30], rel=1e-13)


def test_param_cycle_is_a_located_error():
    with pytest.raises(MechError) as ei:
        run("param C[h in 1..3] = C[mod(h, 3) + 1];\nreport r = C[1];")
    msg = str(ei.value)
    assert "cycle" in msg and "C[1] -> C[2] -> C[3] -> C[1]" in msg and "<string>:1:" in msg


def test_aux_recurrence_200_levels():
    src = ("param H integer = 200;\n"
           "aux A[h in 1..H] { var y >= 0, <= 150; constraint C: y <= 1 + (if h == 1 then 0 else A[h-1].objective);"
           " maximize y; }\n"
           "report r[h in 1..H] = A[h].objective;")
    r = run(src)
    assert all(r.reports["r"][(h,)] == pytest.approx(min(h, 150), abs=1e-7) for h in range(1, 201))


def test_aux_cycle_is_a_located_error():
    src = "aux A[h in 1..2] { var y >= 0, <= 100; constraint C: y <= 1 + A[3 - h].objective; maximize y; }\n" \
          "report r = A[1].objective;"
    with pytest.raises(MechError) as ei:
        run(src)
    assert "cycle" in str(ei.value) and "A[1] -> A[2] -> A[1]" in str(ei.value)


def test_a_scalar_param_cannot_refer_to_itself():
    with pytest.raises(MechError) as ei:
        run("param a = a + 1;")
    assert "unknown name 'a'" in str(ei.value)
