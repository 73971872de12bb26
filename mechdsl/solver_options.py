"""``--solver-option KEY=VALUE``: parse and check solver options against the solver's own option list.

HiGHS options are checked with highspy (``getOptionType``, then ``setOptionValue`` on a scratch
``Highs`` object, which also checks the value against the option's type and range).  IPOPT options
are checked by IPOPT itself: a tiny CasADi ``nlpsol`` is built with the option, and IPOPT rejects an
unknown name or a bad value when the solver is created.  Nothing here builds or solves the user's
model, so a wrong option is a usage error (exit 2) before the spec is even parsed.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile

from .errors import did_you_mean

SOLVER_LABELS = {"highs": "HiGHS", "ipopt": "IPOPT"}


class OptionError(ValueError):
    """A malformed, unknown or invalid solver option (the message says which and why)."""


def parse_options(items, solver: str) -> dict:
    """``["KEY=VALUE", ...]`` checked against ``solver``'s options; returns ``{KEY: typed value}``."""
    out: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key:
            raise OptionError(f"'{item}' is not KEY=VALUE")
        if solver == "ipopt" and key.startswith("ipopt."):
            key = key[len("ipopt."):]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*", key):
            raise OptionError(f"'{key}' is not an option name")
        out[key] = (_highs_value if solver == "highs" else _ipopt_value)(key, text)
    return out


# --------------------------------------------------------------------------- HiGHS
def _highs_value(key: str, text: str):
    import highspy

    with _captured_stdout() as captured:
        h = highspy.Highs()  # the banner (and any error message) goes to the capture
        status, kind = h.getOptionType(key)
    if status != highspy.HighsStatus.kOk:
        raise OptionError(_unknown("highs", key, highs_option_names()))
    kinds = highspy.HighsOptionType
    try:
        if kind == kinds.kBool:
            low = text.lower()
            if low not in ("true", "false", "on", "off", "yes", "no", "1", "0"):
                raise ValueError
            value = low in ("true", "on", "yes", "1")
        elif kind == kinds.kInt:
            value = int(text)
        elif kind == kinds.kDouble:
            value = float(text)
        else:
            value = text
    except ValueError:
        what = {kinds.kBool: "true or false", kinds.kInt: "an integer", kinds.kDouble: "a number"}[kind]
        raise OptionError(f"HiGHS option '{key}' takes {what}, not '{text}'") from None
    with _captured_stdout() as captured:
        ok = h.setOptionValue(key, value) == highspy.HighsStatus.kOk
    if not ok:
        reason = _last_line(captured.text, key)
        raise OptionError(f"invalid value '{text}' for HiGHS option '{key}'" + (f": {reason}" if reason else ""))
    return value


def highs_option_names() -> list[str]:
    import highspy

    return sorted(a for a in dir(highspy._core.HighsOptions) if not a.startswith("_"))


# --------------------------------------------------------------------------- IPOPT
def _ipopt_value(key: str, text: str):
    value: object
    if re.fullmatch(r"[+-]?\d+", text):
        value = int(text)
    else:
        try:
            value = float(text)
        except ValueError:
            value = text
    import casadi as ca

    x = ca.MX.sym("x")
    opts = {"ipopt.sb": "yes", "ipopt.print_level": 0, "print_time": False, f"ipopt.{key}": value}
    try:
        with _captured_stdout() as captured:
            ca.nlpsol("mechdsl_option_check", "ipopt", {"x": x, "f": x * x}, opts)
    except Exception as exc:  # CasADi raises when IPOPT rejects an option
        if "No such IPOPT option" in str(exc):
            raise OptionError(_unknown("ipopt", key, ipopt_option_names())) from None
        reason = _last_line(captured.text, key)
        raise OptionError(f"invalid value '{text}' for IPOPT option '{key}'" + (f": {reason}" if reason else "")) from None
    return value


def ipopt_option_names() -> list[str]:
    """IPOPT's documented options (its own ``print_options_documentation``)."""
    import casadi as ca

    x = ca.MX.sym("x")
    try:
        with _captured_stdout() as captured:
            ca.nlpsol("mechdsl_option_doc", "ipopt", {"x": x, "f": x * x},
                      {"ipopt.print_options_documentation": "yes", "ipopt.sb": "yes", "print_time": False})
    except Exception:  # pragma: no cover
        return []
    return sorted({m.group(1) for m in re.finditer(r"^([a-z_][a-z_0-9]*)\s", captured.text, re.M)})


# --------------------------------------------------------------------------- helpers
def _unknown(solver: str, key: str, names) -> str:
    msg = f"unknown {SOLVER_LABELS[solver]} option '{key}'"
    hint = did_you_mean(key, names)
    return f"{msg}; {hint}" if hint else msg


def _last_line(text: str, key: str) -> str:
    """The solver's own explanation of a rejected value (the first line that names the option)."""
    for line in text.splitlines():
        line = line.strip()
        if key in line and line:
            return re.sub(r"^ERROR:\s*", "", line)
    return ""


class _Captured:
    text = ""


@contextlib.contextmanager
def _captured_stdout():
    """What the solvers print meanwhile, kept instead of shown: C code (HiGHS, IPOPT) writes to file
    descriptor 1, and CasADi sends IPOPT's output to Python's ``sys.stdout``; both are captured."""
    cap = _Captured()
    try:
        sys.stdout.flush()
    except Exception:  # pragma: no cover - a closed stdout
        pass
    py = io.StringIO()
    try:
        saved = os.dup(1)
    except OSError:  # pragma: no cover - no file descriptor 1
        with contextlib.redirect_stdout(py):
            yield cap
        cap.text = py.getvalue()
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            with contextlib.redirect_stdout(py):
                yield cap
        finally:
            _fflush_c()
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            cap.text = py.getvalue() + tmp.read().decode("utf-8", errors="replace")


def _fflush_c() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except Exception:  # pragma: no cover - no C library to flush
        pass
