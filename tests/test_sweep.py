"""Sweeps (``mechdsl sweep``, ``Model.sweep``): grid syntax, rows, failures, resume, output formats, Dask.

Every objective in a sweep is checked against a separate ``mechdsl.load(...).solve()`` at the same point
(a fresh Model: its own parse, binding and auxiliary solves), and the Dask rows against the serial ones.
"""
import csv
import json
import sys

import pytest

import mechdsl
from conftest import SPECS
from mechdsl import cli
from mechdsl.sweep import (Output, SweepError, cacheable_auxes, make_grid, parse_grid, parse_range, parse_values,
                           summary)

CML = SPECS / "cml_two_type.mech"
P3 = "p=[[0.1,0.9],[0.5,0.5],[0.9,0.1]]"  # cml_two_type's params are p (type probabilities) and N (parties)

LP = """
param b = 1;
param w[i in 1..2] = [1, 1];
var x[i in 1..2] >= 0, <= 5;
constraint C[i in 1..2]: x[i] >= b * w[i];
minimize Cost: sum{i in 1..2} x[i];
report twice[i in 1..2] = 2 * x[i];
report total = sum{i in 1..2} x[i];
"""


def run(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------ grid syntax
def test_range_is_decimal_and_includes_the_stop():
    xs = parse_range("0:1:0.1")
    assert len(xs) == 11 and xs[0] == 0.0 and xs[-1] == 1.0
    assert xs[3] == 0.3 and xs[7] == 0.7  # no 0.30000000000000004: decimal arithmetic from the digits typed
    assert parse_range("0.1:0.3:0.1") == [0.1, 0.2, 0.3]  # float stepping would stop at 0.2
    assert parse_range("0:1:0.3") == [0.0, 0.3, 0.6, 0.9]  # does not land on the stop: not included
    assert parse_range("1:0:-0.5") == [1.0, 0.5, 0.0]
    assert parse_range("1e-3:3e-3:1e-3") == [0.001, 0.002, 0.003]
    assert parse_range("0:0.30000000001:0.1")[-1] == 0.30000000001  # within 1e-9 steps: lands on the stop


def test_integer_ranges_and_lists():
    assert parse_range("2:10:2") == [2, 4, 6, 8, 10] and all(isinstance(v, int) for v in parse_range("2:10:2"))
    assert parse_range("1:3") == [1, 2, 3]
    assert parse_values("2,5,10") == [2, 5, 10]
    assert parse_values("0.1, 0.3,0.5") == [0.1, 0.3, 0.5]
    assert parse_values("0,0.5:1:0.25") == [0, 0.5, 0.75, 1.0]


def test_json_values_for_indexed_params():
    assert parse_grid(P3) == ("p", [[0.1, 0.9], [0.5, 0.5], [0.9, 0.1]])
    assert parse_values("[0.1,0.9],[0.5,0.5]") == [[0.1, 0.9], [0.5, 0.5]]  # the outer brackets may be left out
    assert parse_values("[1, 2, 3]") == [1, 2, 3]


@pytest.mark.parametrize("text, words", [
    ("0:1:0", "step"), ("1:0:0.1", "empty"), ("a:b", "not a range"), ("0:1:2:3", "not a range"),
    ("abc", "not a number"), ("1,,2", "empty value"), ("nan", "finite"), ("[[1,2],", "JSON"), ("[]", "empty"),
    ("[true]", "finite numbers"),
])
def test_bad_values_are_errors(text, words):
    with pytest.raises(SweepError, match=words):
        parse_values(text)


def test_grid_errors():
    with pytest.raises(SweepError, match="NAME=VALUES"):
        parse_grid("N")
    with pytest.raises(SweepError, match="repeated"):
        make_grid(["N=2,5,2.0"])
    with pytest.raises(SweepError, match="given twice"):
        make_grid(["N=2", "N=5"])
    assert make_grid({"N": range(2, 5), "p": "[[0.5,0.5]]"}) == {"N": [2, 3, 4], "p": [[0.5, 0.5]]}


def test_grid_names_are_checked_against_the_spec(capsys):
    code, out, err = run(capsys, "sweep", CML, "--grid", "NN=2")
    assert code == 2 and "unknown param 'NN'" in err and "did you mean 'N'" in err
    code, out, err = run(capsys, "sweep", CML, "--grid", "m=2")
    assert code == 2 and "'m' is a var, not a param" in err
    code, out, err = run(capsys, "sweep", CML, "--grid", "p=0.5,0.6")
    assert code == 2 and "indexed" in err and "p=[[" in err
    code, out, err = run(capsys, "sweep", CML, "--grid", "N=2", "--select", "mm")
    assert code == 2 and "did you mean 'm'" in err
    code, out, err = run(capsys, "sweep", CML, "--grid", "N=2", "-o", "out.txt")
    assert code == 2 and ".csv, .jsonl or .parquet" in err


# ------------------------------------------------------------------ the must-show sweep
def test_must_show_sweep_matches_separate_solves(capsys, tmp_path):
    out_file = tmp_path / "sweep.csv"
    code, out, err = run(capsys, "sweep", CML, "--grid", P3, "--grid", "N=2,5,10", "-o", out_file)
    assert code == 0, err
    assert "9 points: 9 locally optimal" in out
    rows = read_csv(out_file)
    assert len(rows) == 9
    assert list(rows[0])[:10] == ["point", "p", "N", "status", "objective", "verification_ok", "max_regret",
                                  "max_ir_violation", "max_violation", "message"]
    points = [(p, n) for p in ([0.1, 0.9], [0.5, 0.5], [0.9, 0.1]) for n in (2, 5, 10)]  # the last grid fastest
    for k, (row, (p, n)) in enumerate(zip(rows, points)):
        assert int(row["point"]) == k and json.loads(row["p"]) == p and int(row["N"]) == n
        assert row["status"] == "locally optimal" and row["verification_ok"] == "true"
        ref = mechdsl.load(CML, overrides={"p": p, "N": n}).solve()  # independent: its own parse and aux solves
        assert ref.verification.ok
        assert float(row["objective"]) == pytest.approx(ref.objective, rel=1e-9, abs=1e-12)
    # more parties, a better jointly trained model (the paper's Fig. 2 trend)
    objs = [float(r["objective"]) for r in rows]
    assert objs[0] < objs[1] < objs[2] and objs[3] < objs[4] < objs[5]


def test_aux_results_that_do_not_depend_on_the_swept_params_are_solved_once():
    model = mechdsl.load(CML).check()
    mech = model.mech
    assert cacheable_auxes(mech, ["p", "N"]) == {"alone"}  # alone[i] uses c, k, a_opt only
    assert cacheable_auxes(mech, ["c"]) == set()
    assert cacheable_auxes(mech, ["k"]) == set()  # through the inlined def a(m)
    assert cacheable_auxes(mech, ["I"]) == set()  # its index set 1..I
    from mechdsl.api import SolveOptions
    from mechdsl.sweep import PointRunner

    runner = PointRunner(model, ("p", "N"), SolveOptions())
    rows = [runner.run(i, {"p": p, "N": n}) for i, (p, n) in enumerate([([0.1, 0.9], 2), ([0.9, 0.1], 5)])]
    assert runner.aux_solved == 2  # alone[1] and alone[2], once for both points
    fresh = PointRunner(model, ("p", "N"), SolveOptions(), cache_aux=False)
    again = [fresh.run(i, {"p": p, "N": n}) for i, (p, n) in enumerate([([0.1, 0.9], 2), ([0.9, 0.1], 5)])]
    assert fresh.aux_solved == 4
    assert [r["objective"] for r in rows] == [r["objective"] for r in again]


# ------------------------------------------------------------------ failures, resume, formats
def test_failed_points_are_recorded_and_the_sweep_goes_on(capsys, tmp_path):
    spec = tmp_path / "lp.mech"
    spec.write_text(LP)
    out_file = tmp_path / "lp.csv"
    code, out, err = run(capsys, "sweep", spec, "--grid", "b=1,7,3", "-o", out_file)
    assert code == 0, err
    assert "3 points: 2 optimal, 1 infeasible" in out
    rows = read_csv(out_file)
    assert [r["status"] for r in rows] == ["optimal", "infeasible", "optimal"]
    assert "infeasible" in rows[1]["message"] and rows[1]["objective"] == ""
    assert float(rows[2]["objective"]) == 6.0 and rows[2]["twice[1]"] == "6"
    # a data error at one point (N >= 1 in cml_two_type) is a row too
    code, out, err = run(capsys, "sweep", CML, "--grid", "N=0,2", "-o", tmp_path / "n.csv")
    assert code == 0, err
    rows = read_csv(tmp_path / "n.csv")
    assert rows[0]["status"] == "error" and "N = 0 is out of range" in rows[0]["message"]
    assert rows[1]["status"] == "locally optimal"


def test_verification_failure_is_a_status(tmp_path):
    model = mechdsl.loads("param b = 1; var x >= 0, <= 5; constraint C: x >= 2; check constraint G: x <= b;"
                          " minimize Cost: x;")
    rows = model.sweep({"b": [1, 3]})
    assert [r["status"] for r in rows] == ["verification failed", "optimal"]
    assert rows[0]["verification_ok"] is False and rows[0]["max_violation"] == pytest.approx(1.0)
    assert "verification failed" in rows[0]["message"]


def test_resume_skips_the_points_already_done(capsys, tmp_path):
    out_file = tmp_path / "r.csv"
    code, out, err = run(capsys, "sweep", CML, "--grid", "N=2,5", "-o", out_file)
    assert code == 0, err
    rows = read_csv(out_file)
    rows[1]["objective"] = "123.5"  # a marker: a point solved again would overwrite it
    with open(out_file, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
        f.write("2,10,locally opt")  # a line torn by an interrupted run is not a point done
    code, out, err = run(capsys, "sweep", CML, "--grid", "N=2,5,10", "-o", out_file, "--resume")
    assert code == 0, err
    assert "3 points: 3 locally optimal (2 already in" in out and "1 solved now" in out
    rows = read_csv(out_file)
    assert [int(r["N"]) for r in rows] == [2, 5, 10] and [int(r["point"]) for r in rows] == [0, 1, 2]
    assert rows[1]["objective"] == "123.5"
    ref = mechdsl.load(CML, overrides={"N": 10}).solve()
    assert float(rows[2]["objective"]) == pytest.approx(ref.objective, rel=1e-9)
    code, out, err = run(capsys, "sweep", CML, "--grid", "N=2", "--grid", "k=1", "-o", out_file, "--resume")
    assert code == 2 and "is a sweep over N, not over N, k" in err
    code, out, err = run(capsys, "sweep", CML, "--grid", "N=2", "--resume")
    assert code == 2 and "needs the output file" in err


def test_json_lines_rows(capsys, tmp_path):
    spec = tmp_path / "lp.mech"
    spec.write_text(LP)
    out_file = tmp_path / "lp.jsonl"
    code, out, err = run(capsys, "sweep", spec, "--grid", "b=1,3", "--grid", "w=[[1,1],[0.5,2]]", "--select", "x",
                         "-o", out_file)
    assert code == 0, err
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert len(rows) == 4
    assert rows[1]["b"] == 1 and rows[1]["w"] == [0.5, 2] and rows[1]["status"] == "optimal"
    assert rows[1]["objective"] == 2.5 and rows[1]["verification_ok"] is True
    assert rows[1]["x[1]"] == 0.5 and rows[1]["x[2]"] == 2.0  # --select x, flattened
    assert rows[1]["twice[2]"] == 4 and rows[1]["total"] == 2.5  # indexed and scalar reports
    assert rows[3]["status"] == "infeasible" and rows[3]["objective"] is None  # b = 3 needs x[2] = 6 > 5


def test_csv_on_stdout_without_output(capsys, tmp_path):
    spec = tmp_path / "lp.mech"
    spec.write_text(LP)
    code, out, err = run(capsys, "sweep", spec, "--grid", "b=0:1:0.5")
    assert code == 0, err
    rows = list(csv.DictReader(out.splitlines()))
    assert [float(r["b"]) for r in rows] == [0.0, 0.5, 1.0] and [float(r["objective"]) for r in rows] == [0, 1, 2]
    assert "3 points: 3 optimal" in err


def test_parquet_needs_pyarrow(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    code, out, err = run(capsys, "sweep", CML, "--grid", "N=2", "-o", tmp_path / "s.parquet")
    assert code == 2 and "needs pyarrow" in err and "pip install pyarrow" in err


def test_parquet_rows(tmp_path):
    import pyarrow.parquet as pq  # a test dependency: this test runs in CI, never skipped
    model = mechdsl.loads(LP)
    out_file = tmp_path / "lp.parquet"
    rows = model.sweep({"b": [1, 7]}, output=out_file)
    back = pq.read_table(out_file).to_pylist()
    assert back == rows and back[1]["status"] == "infeasible"
    assert not (tmp_path / "lp.parquet.partial.jsonl").exists()
    again = model.sweep({"b": [1, 7, 3]}, output=out_file, resume=True)
    assert [r["b"] for r in again] == [1, 7, 3] and again[:2] == rows


def test_pandas_frame():
    pytest.importorskip("pandas")
    frame = mechdsl.loads(LP).sweep({"b": [1, 3]}, pandas=True)
    assert list(frame["objective"]) == [2.0, 6.0] and list(frame["status"]) == ["optimal", "optimal"]


def test_api_sweep_leaves_the_model_as_it_was():
    model = mechdsl.loads(LP, overrides={"b": 2})
    rows = model.sweep({"b": [1, 3]})
    assert [r["objective"] for r in rows] == [2.0, 6.0]
    assert model.solve().objective == 4.0  # still b = 2
    assert summary(rows) == "2 points: 2 optimal"


def test_output_rewrites_csv_when_a_new_column_appears(tmp_path):
    out = Output(tmp_path / "o.csv")
    out.start([])
    out.add({"point": 0, "status": "error", "message": "x"})
    out.add({"point": 1, "status": "optimal", "message": "", "r[1]": 2.5})  # a report the failed point lacks
    rows = read_csv(tmp_path / "o.csv")
    assert rows[0]["r[1]"] == "" and rows[1]["r[1]"] == "2.5"
    out.finish([{"point": 1, "status": "optimal", "message": "", "r[1]": 2.5}])
    assert len(read_csv(tmp_path / "o.csv")) == 1


# ------------------------------------------------------------------ Dask
GRID_DASK = ["--grid", "p=[[0.1,0.9],[0.9,0.1]]", "--grid", "N=0,2,5"]  # 6 points, 2 of them data errors


def test_workers_2_gives_the_serial_rows(capsys, tmp_path):
    serial, dask = tmp_path / "serial.csv", tmp_path / "dask.csv"
    code, out, err = run(capsys, "sweep", CML, *GRID_DASK, "-o", serial)
    assert code == 0, err
    code, out, err = run(capsys, "sweep", CML, *GRID_DASK, "-o", dask, "--workers", "2", "-q")
    assert code == 0, err
    assert "6 points: 4 locally optimal, 2 error" in out
    assert dask.read_text() == serial.read_text()  # the same rows, in grid order, to the last digit


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as c:
        yield c


def test_client_and_scheduler_address(capsys, tmp_path, cluster):
    from distributed import Client

    model = mechdsl.load(CML)
    grid = {"p": [[0.2, 0.8], [0.6, 0.4]], "N": [3, 4]}
    serial = model.sweep(grid)
    with Client(cluster) as client:
        assert model.sweep(grid, client=client) == serial
        # another sweep on the same workers (over other params: another cached model there)
        row = model.sweep({"N": [3]}, client=client)[0]
        assert row["objective"] == pytest.approx(mechdsl.load(CML, overrides={"N": 3}).solve().objective, rel=1e-9)
    out_file = tmp_path / "s.jsonl"
    code, out, err = run(capsys, "sweep", CML, "--grid", "p=[[0.2,0.8],[0.6,0.4]]", "--grid", "N=3,4",
                         "--scheduler", cluster.scheduler_address, "-o", out_file)
    assert code == 0, err
    assert [json.loads(line) for line in out_file.read_text().splitlines()] == serial
