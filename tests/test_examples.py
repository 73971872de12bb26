"""Bundled example specs outside specs/*.mech: the deliberately infeasible one explains itself."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mechdsl

SPEC = Path(__file__).resolve().parent.parent / "specs" / "infeasible" / "screening_capped.mech"


def test_infeasible_example_names_its_iis_in_spec_terms():
    out = subprocess.run([sys.executable, "-m", "mechdsl", "solve", str(SPEC), "--json"], capture_output=True,
                         text=True)
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert doc["status"] == "infeasible"
    assert {m["id"] for m in doc["iis"]} == {"Cap[4]", "Floor"}
    assert {m["line"] for m in doc["iis"]} == {16, 17}
    text = subprocess.run([sys.executable, "-m", "mechdsl", "solve", str(SPEC)], capture_output=True, text=True)
    assert text.returncode == 1 and "Cap[4]" in text.stderr and "Floor" in text.stderr


def test_dropping_either_member_makes_it_feasible():
    """Irreducible: without the floor, or with the cap raised to 1 for the top type, it solves and verifies;
    the optimum without the floor is the capped Mussa-Rosen menu, computed here by brute force over q."""
    src = SPEC.read_text()
    no_floor = mechdsl.loads(src.replace("constraint Floor: q[K] >= 1;", "")).solve()
    assert no_floor.status == "optimal" and no_floor.verification.ok
    # K = 4, theta = k/4, uniform: virtual value 2k/4 - 1; profit per unit of q_k: (2k - 4)/16 - q^2/8;
    # unconstrained optimum q_k = max(0, (2k - 4)/4) capped at 1/2.
    qs = [min(0.5, max(0.0, (2 * k - 4) / 4)) for k in range(1, 5)]
    want = sum(((2 * k - 4) / 4 * q - q * q / 2) / 4 for k, q in zip(range(1, 5), qs))
    assert abs(no_floor.objective - want) < 1e-9
    no_cap = mechdsl.loads(src.replace("feasibility Cap[k in 1..K]: q[k] <= 1 / 2;",
                                       "feasibility Cap[k in 1..K]: q[k] <= (if k == K then 1 else 1 / 2);")).solve()
    assert no_cap.status == "optimal" and no_cap.verification.ok


def test_verbose_solver_logs_say_which_problem():
    specs = SPEC.parent.parent
    out = subprocess.run([sys.executable, "-m", "mechdsl", "solve", str(specs / "cml_two_type.mech"), "-v"],
                         capture_output=True, text=True)
    assert out.returncode == 0
    heads = [line for line in out.stderr.splitlines() if line.startswith("===== ")]
    assert "===== IPOPT: alone[1] (exact) =====" in heads and "===== IPOPT: alone[2] (exact) =====" in heads
    assert "===== IPOPT: cml_two_type (exact) =====" in heads
    assert "Ipopt" in out.stderr  # the solver's own log follows its label
    out = subprocess.run([sys.executable, "-m", "mechdsl", "solve", str(specs / "screening.mech"), "-v"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and any(line.startswith("===== HiGHS: main problem (QP")
                                       for line in out.stderr.splitlines())
