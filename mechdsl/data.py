"""Data for params: ``--set name=value`` and ``--data file.toml``.

Values are read with :mod:`json` and :mod:`tomllib`, never evaluated.  The
result maps a param name to ``(value, where it came from)``; shapes and ranges
are checked against the spec when the model is bound (:mod:`mechdsl.instance`).
"""
from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import DataError, Diagnostic
from .span import Span

_NAME = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")
MAX_NESTING = 32  #: deepest array nesting accepted in a value


@dataclass(frozen=True)
class DataSource:
    """Where a value came from: a ``--set`` argument, a key of a TOML file, or the spec itself.

    ``str()`` is the label ("--set K", "data.toml:3:1"); with a ``span`` and the file's ``text``,
    errors render like every other located error (line, source, caret).
    """

    label: str
    span: Span | None = None
    text: str | None = None

    def __str__(self) -> str:
        return self.label


def data_error(where, message: str) -> DataError:
    """A DataError at ``where``: located with a caret when ``where`` is a DataSource with a span."""
    if isinstance(where, DataSource) and where.span is not None and where.text is not None:
        err = DataError(Diagnostic(message, where.span).render({where.span.file: where.text}))
        err.span = where.span
        return err
    return DataError(f"error: {where}: {message}")


def _bare(exc: DataError, where) -> str:
    """The message of a DataError made by :func:`data_error`, without its location and source excerpt."""
    first = str(exc).splitlines()[0]
    return first.split(" error: ", 1)[1] if " error: " in first else first.split(f"{where}: ", 1)[-1]


def _key_span(path: str, text: str, key: str) -> Span:
    """The position of a top-level TOML key (tomllib gives none): ``key =``, ``"key" =`` or ``[key]``."""
    k = re.escape(key)
    pat = re.compile(rf"^[ \t]*(?:{k}|\"{k}\"|'{k}')[ \t]*=|^[ \t]*\[[ \t]*(?:{k}|\"{k}\"|'{k}')[ \t]*\]",
                     re.MULTILINE)
    m = pat.search(text)
    if m is None:
        return Span(path, 1, 1, 1, 2)
    line = text.count("\n", 0, m.start()) + 1
    col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
    stripped = len(m.group(0)) - len(m.group(0).lstrip())
    return Span(path, line, col + stripped, line, col + stripped + len(key))


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``name=value`` (``K=10``, ``c=[0.2,0.1]``, ``lam=[[0.5,0.5],[1,0]]``)."""
    if "=" not in text:
        raise DataError(f"error: --set {text}: expected name=value, e.g. --set K=10")
    name, raw = text.split("=", 1)
    name, raw = name.strip(), raw.strip()
    if not _NAME.match(name):
        raise DataError(f"error: --set {text}: '{name}' is not a valid param name")
    depth = max_depth = 0
    for ch in raw:  # json.loads recurses: refuse deep nesting before it does
        depth += ch == "["
        depth -= ch == "]"
        max_depth = max(max_depth, depth)
    if max_depth > MAX_NESTING:
        raise DataError(f"error: --set {name}: the value is nested {max_depth} levels deep (limit {MAX_NESTING})")
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        shown = raw if len(raw) <= 60 else raw[:57] + "..."
        raise DataError(f"error: --set {name}: cannot read the value '{shown}'; "
                        "give a number or an array such as [1, 2.5] (nested for tables)") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise DataError(f"error: --set {name}: param '{name}' = {raw} is not a finite number")
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


def _check_value(v, where, depth: int = 0, name: str | None = None):
    if name is not None:
        try:
            return _check_value(v, where, depth)
        except DataError as exc:  # say which param (a TOML key's span shows the key, --set names it)
            raise data_error(where, f"param '{name}': " + _bare(exc, where)) from None
    if depth > MAX_NESTING:
        raise data_error(where, f"the value is nested more than {MAX_NESTING} levels deep")
    if isinstance(v, bool) or v is None or isinstance(v, str) or not isinstance(v, (int, float, list, dict)):
        shown = json.dumps(v, default=str)
        raise data_error(where, f"values must be numbers or arrays of numbers, got {shown[:60]}")
    if isinstance(v, float) and not math.isfinite(v):
        raise data_error(where, f"values must be finite numbers, got {v}")
    if isinstance(v, list):
        for x in v:
            _check_value(x, where, depth + 1)
    elif isinstance(v, dict):
        for x in v.values():
            _check_value(x, where, depth + 1)


def read_toml(path: str | Path) -> dict[str, tuple[Any, str]]:
    """Read a TOML data file: top-level keys are param names."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"error: cannot read data file '{path}': {exc.strerror}") from None
    path = str(path)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}:1: error: the data file is not UTF-8 (byte 0x{raw[exc.start]:02X})") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        if m:
            line, col = int(m.group(1)), int(m.group(2))
            raise DataError(Diagnostic(f"invalid TOML: {msg}", Span(path, line, col, line, col + 1)).render(
                {path: text})) from None
        raise DataError(f"{path}:1:1: error: invalid TOML: {msg}") from None
    except RecursionError:
        raise DataError(f"{path}:1:1: error: invalid TOML: nested too deeply") from None
    out = {}
    for k, v in doc.items():
        where = DataSource(f"{path}: key '{k}'", _key_span(path, text, k), text)
        _check_value(v, where, name=k)
        out[k] = (v, where)
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
