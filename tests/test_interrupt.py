"""Interrupts and deadlines inside a HiGHS solve (issue "Hostile input", item 5).

HiGHS runs in C++; a Ctrl-C must stop it through its interrupt callbacks, cleanly (HiGHS returns,
its model stays usable), and surface as KeyboardInterrupt, so that the CLI says "interrupted while
<phase>" and exits 130.  The run's deadline stops it the same way.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

#: A screening LP (linear cost, bounded quality): all-pairs IC, K(K-1) rows; HiGHS takes seconds at K = 300+.
LP = """\
param K integer >= 2 = 10;
param theta[k in 1..K] > 0 = k / K;
param prob[k in 1..K] >= 0, <= 1 = 1 / K;
type th in 1..K ~ prob;
var q[k in 1..K] >= 0, <= 1;
var p[k in 1..K];
utility u(t, r) = theta[t] * q[r] - p[r];
ic IC[t in 1..K, r in 1..K: t != r]: u(t, t) >= u(t, r);
ir IR[t in 1..K]: u(t, t) >= 0;
maximize Profit: E[th](p[th] - 0.3 * q[th]);
"""

needs_sigint = pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="POSIX signals")


@pytest.fixture(scope="module")
def big_form():
    """The compiled form of the LP at K = 300 (90,000 rows; about 1.5 s of HiGHS on a fast machine)."""
    import mechdsl

    built, _ = mechdsl.loads(LP, "lp.mech", overrides={"K": 300}).compile_form(reduce=False, ic="full")
    return built.form


def _session(form, **kw):
    from mechdsl.compilers.highs.backend import HighsSession

    return HighsSession(form, **kw)


def _on_first_iteration(sess) -> threading.Event:
    """An event set at HiGHS's first simplex iteration (the solve has surely started)."""
    started = threading.Event()

    def first(event):
        started.set()
    sess.h.cbSimplexInterrupt.subscribe(first)
    sess._test_first = first
    return started


@needs_sigint
def test_sigint_stops_highs_cleanly_and_raises_keyboardinterrupt(big_form):
    import highspy

    sess = _session(big_form)
    started = _on_first_iteration(sess)
    kicked = []

    def kick():
        if started.wait(120):
            kicked.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

    saved = signal.signal(signal.SIGINT, signal.default_int_handler)
    th = threading.Thread(target=kick, daemon=True)
    raised = None
    try:
        try:
            th.start()
            sess.solve()
        except KeyboardInterrupt:
            raised = time.monotonic()
        th.join(130)
        time.sleep(0.05)  # a signal sent after a (too fast) solve would land here, inside the try
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, saved)
    assert kicked, "the solve never started"
    assert raised is not None, "KeyboardInterrupt was not raised by the solve"
    assert raised - kicked[0] < 5.0
    assert sess.h.getModelStatus() == highspy.HighsModelStatus.kInterrupt  # HiGHS stopped, not finished
    assert signal.getsignal(signal.SIGINT) is saved
    # the model is still usable, and a new solve is not stopped by the old interrupt
    sess.h.cbSimplexInterrupt.unsubscribe(sess._test_first)
    sol = sess.solve()
    assert sol.status == "optimal"


def test_run_deadline_raises_time_limit_reached(big_form):
    from mechdsl import runstate

    sess = _session(big_form)
    t0 = time.monotonic()
    with runstate.run(0.4):
        runstate.phase("solving the main problem")
        sess.deadline = lambda: runstate.remaining()
        with pytest.raises(runstate.TimeLimitReached, match="time limit of 0.4 s was reached while solving"):
            sess.solve()
    assert time.monotonic() - t0 < 10.0


def test_session_time_limit_is_for_all_its_solves(big_form):
    sess = _session(big_form, time_limit=0.3)
    sol = sess.solve()
    assert sol.status == "iteration limit" and "time limit" in sol.message
    t0 = time.monotonic()
    sol = sess.solve()  # nothing left: no new run of HiGHS
    assert sol.status == "iteration limit" and time.monotonic() - t0 < 0.5


def test_solve_in_another_thread_is_unaffected():
    """Off the main thread no SIGINT handler is installed; the solve works as before."""
    import mechdsl

    built, _ = mechdsl.loads(LP, "lp.mech", overrides={"K": 20}).compile_form(reduce=False, ic="full")
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("sol", _session(built.form).solve()))
    th.start()
    th.join(60)
    assert out["sol"].status == "optimal"


@needs_sigint
def test_cli_ctrl_c_during_a_highs_solve_exits_130(tmp_path):
    """The command line, as run by a user: SIGINT once HiGHS is iterating; exit 130 with the phase, promptly,
    and HiGHS itself reports the interrupt (so it was stopped cleanly, not killed by the watchdog)."""
    spec = tmp_path / "lp.mech"
    spec.write_text(LP)
    cmd = [sys.executable, "-c", "import sys; from mechdsl.cli import main; sys.exit(main())",
           "solve", str(spec), "--set", "K=400", "--no-reduce", "--ic", "full", "-v"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    started = threading.Event()

    def read():
        for line in proc.stderr:
            lines.append(line)
            if "Iteration" in line or "Using dual simplex" in line or "Running IPX" in line:
                started.set()
        started.set()  # EOF

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(180), "HiGHS did not start within 180 s"
        assert proc.poll() is None, "the solve ended before it could be interrupted:\n" + "".join(lines)
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
        waited = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    err = "".join(lines)
    assert code == 130, err
    assert "interrupted while solving the main problem" in err, err
    assert "Interrupted by user" in err, err  # HiGHS's own log: it returned after the callback stopped it
    assert waited < 10.0, (waited, err)
