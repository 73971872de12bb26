"""Data for params: ``--set name=value`` and ``--data file.toml``.

Values are read with :mod:`json` and :mod:`tomllib`, never evaluated.  The
result maps a param name to ``(value, where it came from)``; shapes and ranges
are checked against the spec when the model is bound (:mod:`mechdsl.instance`).
"""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import DataError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``name=value`` (``K=10``, ``c=[0.2,0.1]``, ``lam=[[0.5,0.5],[1,0]]``)."""
    if "=" not in text:
        raise DataError(f"error: --set {text}: expected name=value, e.g. --set K=10")
    name, raw = text.split("=", 1)
    name, raw = name.strip(), raw.strip()
    if not _NAME.match(name):
        raise DataError(f"error: --set {text}: '{name}' is not a valid param name")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise DataError(f"error: --set {name}: cannot read the value '{raw}'; "
                        "give a number or an array such as [1, 2.5] (nested for tables)") from None
    _check_value(value, f"--set {name}")
    return name, value


def _plain(v):
    """numpy arrays and scalars -> plain lists and numbers."""
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _check_value(v, where):
    if isinstance(v, bool) or v is None or isinstance(v, str):
        raise DataError(f"error: {where}: values must be numbers or arrays of numbers, got {json.dumps(v)}")
    if isinstance(v, list):
        for x in v:
            _check_value(x, where)
    elif isinstance(v, dict):
        for x in v.values():
            _check_value(x, where)


def read_toml(path: str | Path) -> dict[str, tuple[Any, str]]:
    """Read a TOML data file: top-level keys are param names."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"error: cannot read data file '{path}': {exc.strerror}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"error: {path}: invalid TOML: {exc}") from None
    out = {}
    for k, v in doc.items():
        _check_value(v, f"{path}: key '{k}'")
        out[k] = (v, f"{path}: key '{k}'")
    return out


def collect(data: str | Path | Mapping | None = None, overrides: Iterable[str] | Mapping | None = None
            ) -> dict[str, tuple[Any, str]]:
    """Merge a data file (or mapping) with overrides; overrides win."""
    out: dict[str, tuple[Any, str]] = {}
    if isinstance(data, Mapping):
        for k, v in data.items():
            v = _plain(v)
            _check_value(v, f"data '{k}'")
            out[k] = (v, f"data '{k}'")
    elif data is not None:
        out.update(read_toml(data))
    if isinstance(overrides, Mapping):
        for k, v in overrides.items():
            v = _plain(v)
            _check_value(v, f"--set {k}")
            out[k] = (v, f"--set {k}")
    elif overrides:
        for text in overrides:
            k, v = parse_override(text)
            out[k] = (v, f"--set {k}")
    return out
