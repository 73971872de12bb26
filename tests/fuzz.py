"""Fuzz campaign of issue 12 ("Hostile input"), run outside the normal test suite.

    python -m tests.fuzz --n 10000 [--seed S] [--timeout 10] [--jobs 2] [--out DIR] [--shrink] [--solve]

Generates distinct mutants of the specs in ``specs/*.mech`` (and of the TOML data
files paired with them, and of ``--set`` overrides), runs each in a worker
process through the public API -- ``mechdsl.api.load(path, data=..., overrides=...)``,
``.check()``, ``.instance()``, ``.compile_form()`` and, when that is not an
LP/QP/MILP, ``.compile()`` (what ``mechdsl compile`` does) -- and classifies the
outcome:

``ok``            the pipeline ran through;
``located``       a MechError whose text has a ``file:line:col: error:`` line or names the
                  command-line argument at fault (``--set``/``--data``);
``solve_error``   a MechError with exit code 1 (an auxiliary problem infeasible, ...): not a spec error;
``unlocated``     a MechError with no location (a finding);
``exception``     any other exception (a finding);
``timeout``       a run over ``--timeout`` seconds (a finding);
``crash``         the worker process died (a finding).

At the end a summary is printed and the findings are written to ``--out``
(one reproducer per group -- the shortest mutant, delta-debugged with
``--shrink`` -- plus ``summary.json``).  The exit code is 0 iff there is no
exception, timeout or crash.  Everything is deterministic given ``--seed``
(except which runs time out on a loaded machine).

The mutation operators are plain functions of a ``random.Random`` and the
spec text; tests/test_fuzz.py reuses them under hypothesis.
"""
from __future__ import annotations

import argparse
import collections
import faulthandler
import hashlib
import json
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import random
import re
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
DATA = SPECS / "data"

# ============================================================================ mutants


@dataclass(frozen=True)
class Mutant:
    """One input: a spec text, optionally a data file and ``--set`` overrides."""

    spec: str                              #: base spec file name, e.g. "screening.mech"
    text: bytes                            #: the (mutated) spec
    data_name: str | None = None           #: base data file name, e.g. "cml_scenario3.toml"
    data: bytes | None = None              #: the (mutated) data file
    overrides: tuple[str, ...] = ()        #: ``--set NAME=VALUE`` strings
    override_map: str | None = None        #: or a JSON object passed as a mapping
    ops: tuple[str, ...] = ()              #: the operators applied, for the record

    def digest(self) -> str:
        h = hashlib.sha1()
        for part in (self.spec.encode(), self.text, (self.data_name or "").encode(), self.data or b"",
                     "\0".join(self.overrides).encode(), (self.override_map or "").encode()):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
        return h.hexdigest()

    def size(self) -> int:
        return (len(self.text) + len(self.data or b"") + sum(len(o) for o in self.overrides)
                + len(self.override_map or ""))


@dataclass
class Base:
    name: str
    text: str
    params: list[str]
    data: dict[str, str] = field(default_factory=dict)   #: paired data files: name -> text


def load_corpus() -> list[Base]:
    """The specs of specs/, each with the data files whose keys are all params of the spec."""
    bases = []
    datas = {p.name: p.read_text(encoding="utf-8") for p in sorted(DATA.glob("*.toml"))}
    for p in sorted(SPECS.glob("*.mech")):
        text = p.read_text(encoding="utf-8")
        params = list(dict.fromkeys(re.findall(r"^\s*param\s+([A-Za-z_]\w*)", text, re.M)))
        b = Base(p.name, text, params)
        for dn, dt in datas.items():
            keys = re.findall(r"^([A-Za-z_]\w*)\s*=", dt, re.M)
            if keys and all(k in params for k in keys):
                b.data[dn] = dt
        bases.append(b)
    return bases


# ---------------------------------------------------------------- tokens

TOKEN_RE = re.compile(r"""
    (?P<comment>\#[^\n]*|//[^\n]*)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_]\w*)
  | (?P<op>\.\.|->|>=|<=|==|!=|[^\s\w])
""", re.X)

KEYWORDS = ["param", "set", "type", "population", "var", "def", "utility", "ic", "ir", "budget",
            "feasibility", "constraint", "check", "maximize", "minimize", "aux", "in", "sum", "prod",
            "E", "uniform", "multinomial", "integer", "binary", "init", "or", "and", "not",
            "complements", "sqrt", "log", "exp", "abs", "min", "max", "objective"]
PUNCT = [";", ",", ":", "(", ")", "[", "]", "{", "}", "..", "->", ">=", "<=", "==", "!=", "=", "+", "-",
         "*", "/", "^", "~", "|", "<", ">", "."]
HOSTILE_NUMBERS = ["1e400", "1e-400", "99999999999999999999", "-99999999999999999999", "0", "-1", "1e308",
                   "1e-308", "2.5", "0.0", "1e9", "100000000", "4294967296", "-0", "1e-12", "123456789012",
                   "1e20", "9007199254740993"]
HOSTILE_RANGES = ["1..0", "5..1", "0..0", "1..1e9", "1..2.5", "1..99999999999999999999", "-3..-1",
                  "1..1e400", "0..-1", "1..100000000", "2.5..3", "1..1"]
HAZARDS = ["1/0", "0/0", "log(0)", "log(-1)", "0^-1", "sqrt(-1)", "10^400", "exp(1000)",
           "max(0, sqrt(-1))", "min(1, log(-2))", "1e308*10", "(-8)^(1/3)", "abs(1/0)", "-1e400",
           "1e400 - 1e400", "0*1e400", "1/(1e-400)", "2^2^2^2^2^2", "exp(exp(exp(10)))",
           "sum{i in 1..0} 1", "prod{i in 5..1} i", "99999999999999999999^9"]


def tokens(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every token; kind is comment, number, name or op."""
    return [(m.start(), m.end(), m.lastgroup) for m in TOKEN_RE.finditer(text)]


def _code_tokens(text: str):
    return [t for t in tokens(text) if t[2] != "comment"]


def _names(text: str) -> list[str]:
    return list(dict.fromkeys(text[a:b] for a, b, k in _code_tokens(text) if k == "name"))


def _declared(text: str, what: str = r"param|var|set|def|utility|type|population|aux") -> list[str]:
    return list(dict.fromkeys(re.findall(rf"^\s*(?:{what})\s+([A-Za-z_]\w*)", text, re.M)))


def _item_ends(text: str) -> list[int]:
    """Offsets just after a ';' that ends a line (a safe place to insert a declaration)."""
    ends = [m.end() for m in re.finditer(r";[ \t]*(?:(?:#|//)[^\n]*)?\n", text)]
    return ends or [len(text)]


def _insert_decl(rng: random.Random, text: str, decl: str) -> str:
    pos = rng.choice(_item_ends(text))
    return text[:pos] + decl + "\n" + text[pos:]


def _param_uses(text: str) -> list[str]:
    """Scalar params (no index) declared in the text."""
    return re.findall(r"^\s*param\s+([A-Za-z_]\w*)\s*(?:[^\[\w=;][^=;]*)?=", text, re.M)


def _var_ref(text: str) -> str | None:
    """A reference to some variable of the text, e.g. ``x[1]`` or ``q[1,1]`` (None if none)."""
    m = re.findall(r"^\s*var\s+([A-Za-z_]\w*)\s*(\[[^\]]*\])?", text, re.M)
    if not m:
        return None
    name, idx = m[0]
    if not idx:
        return name
    dims = idx.count(" in ") or 1
    return f"{name}[{','.join(['1'] * dims)}]"


# ---------------------------------------------------------------- text operators (str -> str)


def op_tok_delete(rng, text):
    toks = _code_tokens(text)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        if not toks:
            break
        a, b, _k = toks.pop(rng.randrange(len(toks)))
        text = text[:a] + text[b:]
        toks = _code_tokens(text)
    return text


def op_tok_dup(rng, text):
    toks = _code_tokens(text)
    if not toks:
        return text
    a, b, _k = rng.choice(toks)
    return text[:b] + " " + text[a:b] + text[b:]


def op_tok_swap(rng, text):
    toks = _code_tokens(text)
    if len(toks) < 2:
        return text
    i = rng.randrange(len(toks) - 1)
    j = i + 1 if rng.random() < 0.6 else rng.randrange(len(toks))
    if i == j:
        return text
    (a1, b1, _), (a2, b2, _) = sorted([toks[i], toks[j]])
    return text[:a1] + text[a2:b2] + text[b1:a2] + text[a1:b1] + text[b2:]


def op_tok_replace(rng, text):
    toks = _code_tokens(text)
    if not toks:
        return text
    a, b, _k = rng.choice(toks)
    pool = KEYWORDS + PUNCT + _names(text) + HOSTILE_NUMBERS[:6]
    return text[:a] + rng.choice(pool) + text[b:]


def _fresh_name(rng, text):
    return rng.choice(["zz", "x_", "_", "K2", "θ", "é", "n" * 300, "sum", "param", "E", "in", "uniform",
                       "sqrt", "min", "objective", "ic", "I"] + _names(text))


def op_rename_one(rng, text):
    toks = [t for t in _code_tokens(text) if t[2] == "name"]
    if not toks:
        return text
    a, b, _k = rng.choice(toks)
    return text[:a] + _fresh_name(rng, text) + text[b:]


def op_rename_all(rng, text):
    names = _declared(text) or _names(text)
    if not names:
        return text
    old = rng.choice(names)
    new = _fresh_name(rng, text)
    return re.sub(rf"(?<![\w]){re.escape(old)}(?![\w])", lambda m: new, text)


def op_number(rng, text):
    toks = [t for t in _code_tokens(text) if t[2] == "number"]
    if not toks:
        return text
    for _ in range(rng.choice([1, 1, 2])):
        a, b, _k = rng.choice(toks)
        text = text[:a] + rng.choice(HOSTILE_NUMBERS) + text[b:]
        toks = [t for t in _code_tokens(text) if t[2] == "number"]
        if not toks:
            break
    return text


def op_range(rng, text):
    spans = [m.span() for m in re.finditer(r"[\w()+\-]+\s*\.\.\s*[\w()+\-*/]+", text)]
    if not spans:
        return text
    a, b = rng.choice(spans)
    r = rng.random()
    if r < 0.7:
        new = rng.choice(HOSTILE_RANGES)
    elif r < 0.85:  # reverse the range as written
        lo, hi = re.split(r"\s*\.\.\s*", text[a:b], maxsplit=1)
        new = f"{hi}..{lo}"
    else:
        new = rng.choice(["{}", "{1, 1}", "{0}", "{1e400}", "{-1, 2.5}"])
    return text[:a] + new + text[b:]


def op_default(rng, text):
    """Change a param default (scalar value or array shape)."""
    ms = list(re.finditer(r"^(\s*param\s+\w+[^=;\n]*=\s*)([^;]+);", text, re.M))
    if not ms:
        return text
    m = rng.choice(ms)
    val = m.group(2)
    r = rng.random()
    if val.lstrip().startswith("[") and r < 0.7:
        choice = rng.randrange(5)
        if choice == 0:      # drop the last element
            new = re.sub(r",\s*[^,\[\]]+\]\s*$", "]", val, count=1)
        elif choice == 1:    # add one
            new = re.sub(r"\]\s*$", ", 1]", val, count=1)
        elif choice == 2:    # nest deeper
            new = f"[{val}]"
        elif choice == 3:
            new = "[]"
        else:
            new = re.sub(r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", lambda _m: rng.choice(HOSTILE_NUMBERS), val, count=1)
    else:
        new = rng.choice(HOSTILE_NUMBERS + HAZARDS + ["[1, 2]", "[[1]]", "[]"])
    return text[:m.start(2)] + new + text[m.end(2):]


def op_line_delete(rng, text):
    lines = text.splitlines(keepends=True)
    if len(lines) > 1:
        del lines[rng.randrange(len(lines))]
    return "".join(lines)


def op_line_dup(rng, text):
    lines = text.splitlines(keepends=True)
    if lines:
        i = rng.randrange(len(lines))
        lines.insert(rng.randrange(len(lines) + 1), lines[i] if lines[i].endswith("\n") else lines[i] + "\n")
    return "".join(lines)


def op_line_swap(rng, text):
    lines = text.splitlines(keepends=True)
    if len(lines) > 1:
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


def op_truncate(rng, text):
    return text[:rng.randrange(len(text) + 1)]


def deep_expression(rng) -> str:
    kind = rng.randrange(8)
    if kind == 0:
        return " + ".join(["1"] * rng.choice([300, 3000, 10000]))
    if kind == 1:
        return "- " * rng.choice([300, 3000]) + "1"
    if kind == 2:
        n = rng.choice([100, 1000, 3000])
        return "sqrt(" * n + "1" + ")" * n
    if kind == 3:
        n = rng.choice([200, 1000, 5000])
        return "(" * n + "1" + ")" * n
    if kind == 4:
        return "^".join(["1"] * rng.choice([100, 1000]))
    if kind == 5:
        n = rng.choice([100, 1000])
        return "max(0, " * n + "1" + ")" * n
    if kind == 6:
        return " * ".join(["2"] * rng.choice([1100, 3000]))
    return "min(" + ", ".join(str(i) for i in range(rng.choice([1000, 5000]))) + ")"


def op_deep(rng, text):
    """Deep nesting: a huge param, array, def chain, or objective."""
    r = rng.randrange(6)
    if r <= 1:
        return _insert_decl(rng, text, f"param zz = {deep_expression(rng)};")
    if r == 2:  # replace an existing param default
        ms = list(re.finditer(r"^(\s*param\s+\w+[^=;\n]*=\s*)([^;]+);", text, re.M))
        if ms:
            m = rng.choice(ms)
            return text[:m.start(2)] + deep_expression(rng) + text[m.end(2):]
        return _insert_decl(rng, text, f"param zz = {deep_expression(rng)};")
    if r == 3:  # nested arrays
        n = rng.choice([100, 1000, 5000])
        return _insert_decl(rng, text, f"param zz[i in 1..1] = {'[' * n}1{']' * n};")
    if r == 4:  # exponential def chain f_j(x) = f_{j-1}(x) + f_{j-1}(x)
        depth = rng.choice([10, 16, 20, 24])
        decls = ["def f0(x) = x;"] + [f"def f{j}(x) = f{j - 1}(x) + f{j - 1}(x);" for j in range(1, depth + 1)]
        decls.append(f"param zz = f{depth}(1);")
        return _insert_decl(rng, text, "\n".join(decls))
    # a huge objective / constraint over a variable
    ref = _var_ref(text)
    if ref is None:
        return _insert_decl(rng, text, f"param zz = {deep_expression(rng)};")
    body = " + ".join([ref] * rng.choice([300, 3000]))
    if rng.random() < 0.5:
        return _insert_decl(rng, text, f"constraint ZZ: {body} <= 1;")
    return re.sub(r"^(maximize|minimize)([^:;\n]*:)?[^;]*;", lambda m: f"{m.group(1)} {body};", text,
                  count=1, flags=re.M)


def op_hazard(rng, text):
    """Arithmetic hazards (division by zero, overflow, complex results), sometimes used in a bound."""
    h = rng.choice(HAZARDS)
    r = rng.random()
    ref = _var_ref(text)
    if r < 0.45:
        return _insert_decl(rng, text, f"param zz = {h};")
    if r < 0.65:
        return _insert_decl(rng, text, f"param zz = {h};\nvar zzv >= zz, <= 1;\nconstraint ZZC: zzv <= 1;")
    if r < 0.75 and ref:
        return _insert_decl(rng, text, f"constraint ZZC: {ref} >= {h};")
    if r < 0.85 and ref:
        return re.sub(r"^(maximize|minimize)([^:;\n]*:)?[^;]*;",
                      lambda m: f"{m.group(1)} {rng.choice([ref + '^1e400', ref + ' * ' + h, ref + '^' + h])};",
                      text, count=1, flags=re.M)
    if r < 0.92 and ref:
        return _insert_decl(rng, text, f"constraint ZZC: {ref} {rng.choice(['>', '<', '==', '!='])} 0.5;")
    ps = _param_uses(text)
    if ps:  # 1/(K-1) style: a hazard for some data values only
        p = rng.choice(ps)
        return _insert_decl(rng, text, f"param zz = {rng.choice(['1/', 'sqrt', 'log'])}({p} - {p});")
    return _insert_decl(rng, text, "def zf(x) = 1 >= x;\nparam zz = zf(1) - 2;")


def random_expr(rng: random.Random, depth: int = 0, names: list[str] | None = None) -> str:
    """A random arithmetic expression of numbers (and the given scalar names)."""
    leaves = ["0", "1", "2", "-1", "0.5", "3", "1e-9", "1e9"] + HOSTILE_NUMBERS[:4] + (names or [])
    if depth > 4 or rng.random() < 0.3:
        return rng.choice(leaves)
    r = rng.randrange(4)
    sub = lambda: random_expr(rng, depth + 1, names)  # noqa: E731
    if r == 0:
        return f"{sub()} {rng.choice(['+', '-', '*', '/', '^'])} {sub()}"
    if r == 1:
        return f"{rng.choice(['sqrt', 'log', 'exp', 'abs'])}({sub()})"
    if r == 2:
        return f"{rng.choice(['min', 'max'])}({', '.join(sub() for _ in range(rng.randint(1, 3)))})"
    return f"({sub()})" if rng.random() < 0.5 else f"-{sub()}"


def op_random_expr(rng, text):
    return _insert_decl(rng, text, f"param zz = {random_expr(rng, 0, _param_uses(text)[:4])};")


def op_splice(rng, text, corpus=None):
    """A line from some spec of the corpus, inserted at a random line."""
    src = rng.choice(corpus).text if corpus else text
    lines = [ln for ln in src.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return text
    mine = text.splitlines(keepends=True)
    mine.insert(rng.randrange(len(mine) + 1), rng.choice(lines) + "\n")
    return "".join(mine)


TEXT_OPS = {
    "tok_delete": (op_tok_delete, 5), "tok_dup": (op_tok_dup, 4), "tok_swap": (op_tok_swap, 4),
    "tok_replace": (op_tok_replace, 4), "rename_one": (op_rename_one, 5), "rename_all": (op_rename_all, 5),
    "number": (op_number, 8), "range": (op_range, 7), "default": (op_default, 7),
    "line_delete": (op_line_delete, 4), "line_dup": (op_line_dup, 4), "line_swap": (op_line_swap, 3),
    "truncate": (op_truncate, 1), "deep": (op_deep, 5), "hazard": (op_hazard, 8),
    "random_expr": (op_random_expr, 6), "splice": (op_splice, 3),
}

# ---------------------------------------------------------------- byte operators (bytes -> bytes)


def op_byte_flip(rng, data: bytes) -> bytes:
    if not data:
        return bytes([rng.randrange(256)])
    b = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 3])):
        i = rng.randrange(len(b))
        b[i] = b[i] ^ (1 << rng.randrange(8)) if rng.random() < 0.5 else rng.randrange(256)
    return bytes(b)


def op_encoding(rng, data: bytes) -> bytes:
    r = rng.randrange(11)
    if r == 0:
        return b"\xef\xbb\xbf" + data                       # UTF-8 BOM
    if r == 1:                                                # a Latin-1 byte in a comment
        i = data.find(b"#")
        return data + b"# caf\xe9\n" if i < 0 else data[:i + 1] + b" caf\xe9" + data[i + 1:]
    if r == 2:                                                # a NUL somewhere
        i = rng.randrange(len(data) + 1)
        return data[:i] + b"\x00" + data[i:]
    if r == 3:
        return data.decode("utf-8", "replace").encode("utf-16")
    if r == 4:
        return data.replace(b"\n", b"\r\n")
    if r == 5:
        return data.replace(b"\n", b"\r")
    if r == 6:                                                # invalid UTF-8 anywhere
        i = rng.randrange(len(data) + 1)
        return data[:i] + rng.choice([b"\xff\xfe", b"\xed\xa0\x80", b"\xc3", b"\x80"]) + data[i:]
    if r == 7:
        return data.decode("utf-8", "replace").encode("latin-1", "replace") + b"# \xe9t\xe9\n"
    if r == 8:                                                # form feed, vertical tab, NBSP
        i = rng.randrange(len(data) + 1)
        return data[:i] + rng.choice([b"\x0c", b"\x0b", b"\xc2\xa0", b"\xe2\x80\x8b"]) + data[i:]
    if r == 9:
        return b"\xef\xbb\xbf\xef\xbb\xbf" + data               # two BOMs
    return rng.choice([b"", b"\n", b"# only a comment\n", b"\x00" * 8, b";", b"\xef\xbb\xbf"])


BYTE_OPS = {"byte_flip": (op_byte_flip, 6), "encoding": (op_encoding, 4)}

# ---------------------------------------------------------------- data file and overrides


def op_data(rng, text: str) -> bytes:
    """Mutate a TOML data file."""
    r = rng.randrange(10)
    if r == 0:
        return op_byte_flip(rng, text.encode())
    if r <= 2:  # hostile numbers
        ms = list(re.finditer(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", text))
        if ms:
            m = rng.choice(ms)
            text = text[:m.start()] + rng.choice(HOSTILE_NUMBERS + ["inf", "nan", "-inf", "1e400"]) + text[m.end():]
        return text.encode()
    if r == 3:
        return op_line_delete(rng, text).encode()
    if r == 4:  # a key twice, or unknown
        keys = re.findall(r"^([A-Za-z_]\w*)\s*=", text, re.M)
        return (text + f"\n{rng.choice(keys + ['zz', 'K2'])} = 1\n").encode()
    if r == 5:  # array shape
        ms = list(re.finditer(r"\[[^\[\]]*\]", text))
        if ms:
            m = rng.choice(ms)
            new = rng.choice(["[]", "[1]", f"[{m.group(0)}]", m.group(0)[:-1] + ", 1]",
                              re.sub(r",[^,]*\]$", "]", m.group(0))])
            text = text[:m.start()] + new + text[m.end():]
        return text.encode()
    if r == 6:  # value types
        ms = list(re.finditer(r"^([A-Za-z_]\w*\s*=\s*)(.+)$", text, re.M))
        if ms:
            m = rng.choice(ms)
            new = rng.choice(['"abc"', "true", "1979-05-27", "{a = 1}", "[1, [2]]", '["a", "b"]', "inf",
                              "nan", "99999999999999999999", "100000000", "-1", "0"])
            text = text[:m.start(2)] + new + text[m.end(2):]
        return text.encode()
    if r == 7:  # deep nesting
        keys = re.findall(r"^([A-Za-z_]\w*)\s*=", text, re.M) or ["zz"]
        n = rng.choice([1000, 50000])
        return (text + f"\n{rng.choice(keys)} = {'[' * n}1{']' * n}\n").encode()
    if r == 8:
        return op_encoding(rng, text.encode())
    return op_tok_delete(rng, text).encode()


def override_strings(rng, base: Base) -> tuple[str, ...]:
    """Hostile ``--set`` arguments for the params of ``base``."""
    out = []
    for _ in range(rng.choice([1, 1, 2])):
        p = rng.choice(base.params) if base.params else "K"
        r = rng.randrange(9)
        if r <= 2:
            v = rng.choice(HOSTILE_NUMBERS + ["nan", "inf", "-inf", "1e400", "100000"])
        elif r == 3:
            v = rng.choice(["[1,2]", "[]", "[[1]]", "[1e400]", "[1, nan]", "[1, 1e308*10]", "[[1,2],[3]]"])
        elif r == 4:
            v = "[" * rng.choice([1000, 50000])
        elif r == 5:
            v = rng.choice(["abc", "true", '"3"', "", "1..3", "{1}", "1/0", "[1,", "None"])
        elif r == 6:
            out.append(rng.choice(["=1", p, f"{p}==1", "zz=1", f" {p} = 1", f"{p}[1]=2", "é=1"]))
            continue
        elif r == 7:
            v = random_expr(rng)
        else:
            v = str(rng.choice([0, 1, 2, 3, 10, 100, 100000000, -5]))
        out.append(f"{p}={v}")
    return tuple(out)


# ---------------------------------------------------------------- generation


def _weighted(rng, table):
    names = list(table)
    return rng.choices(names, weights=[table[n][1] for n in names])[0]


def mutate(rng: random.Random, base: Base, corpus: list[Base] | None = None) -> Mutant:
    """One random mutant of ``base`` (1 to 3 stacked operators, maybe data / overrides)."""
    text = base.text
    ops = []
    r = rng.random()
    n_text = 0 if r < 0.12 else rng.choices([1, 2, 3], weights=[6, 3, 1])[0]
    for _ in range(n_text):
        name = _weighted(rng, TEXT_OPS)
        fn = TEXT_OPS[name][0]
        text = fn(rng, text, corpus) if name == "splice" else fn(rng, text)
        ops.append(name)
    raw = text.encode("utf-8")
    if rng.random() < (0.15 if n_text else 0.3):
        name = _weighted(rng, BYTE_OPS)
        raw = BYTE_OPS[name][0](rng, raw)
        ops.append(name)
    data_name = data = None
    if base.data and rng.random() < 0.4:
        data_name = rng.choice(sorted(base.data))
        dtext = base.data[data_name]
        if rng.random() < 0.7 or not ops:
            data = op_data(rng, dtext)
            ops.append("data")
        else:
            data = dtext.encode()
    overrides: tuple[str, ...] = ()
    if rng.random() < (0.12 if ops else 1.0):
        overrides = override_strings(rng, base)
        ops.append("set")
    return Mutant(base.name, raw, data_name, data, overrides, None, tuple(ops))


def generate(n: int, seed: int, corpus: list[Base] | None = None) -> list[Mutant]:
    """``n`` distinct mutants (none equal to an original input), deterministic given ``seed``."""
    corpus = corpus or load_corpus()
    rng = random.Random(seed)
    seen = {Mutant(b.name, b.text.encode()).digest() for b in corpus}
    out = []
    attempts = 0
    while len(out) < n and attempts < 50 * n + 1000:
        attempts += 1
        m = mutate(rng, rng.choice(corpus), corpus)
        d = m.digest()
        if d not in seen:
            seen.add(d)
            out.append(m)
    return out


def mutants(n: int, seed: int = 0):
    """``(spec name, data path or None, spec bytes)`` of ``n`` distinct mutants (a simpler interface).

    Mutants with ``--set`` overrides are left out (this interface has no place for them); a mutated data
    file is written to a temporary directory.
    """
    tmp = None
    for i, m in enumerate(generate(n, seed)):
        if m.overrides or m.override_map:
            continue
        data = None
        if m.data is not None:
            orig = DATA / m.data_name
            if orig.read_bytes() == m.data:
                data = str(orig)
            else:
                tmp = tmp or tempfile.mkdtemp(prefix="mechdsl_fuzz_data_")
                data = os.path.join(tmp, f"d{i}_{m.data_name}")
                with open(data, "wb") as fh:
                    fh.write(m.data)
        yield m.spec, data, m.text


# ============================================================================ running one mutant

LOCATED_RE = re.compile(r"^\S+:\d+:\d+: error: ", re.M)
LOCATED = LOCATED_RE  #: the name tests/test_fuzz.py uses
ARGUMENT_RE = re.compile(r"(?<![\w-])--(set|data)\b")


def is_located(msg: str) -> bool:
    """A ``file:line:col: error:`` line, or the command-line argument at fault is named."""
    return bool(LOCATED_RE.search(msg) or ARGUMENT_RE.search(msg))


class FuzzTimeout(BaseException):
    """Raised by SIGALRM in a worker (a BaseException, so ``except Exception`` cannot swallow it)."""


def _short(path: str) -> str:
    p = str(path)
    r = str(ROOT) + os.sep
    if p.startswith(r):
        return p[len(r):]
    for marker in ("site-packages" + os.sep, "lib" + os.sep + "python3"):
        i = p.rfind(marker)
        if i >= 0:
            return p[i + len(marker):].lstrip(os.sep)
    return p


def _frames_info(frames: list[tuple[str, int, str]], exc_type: str) -> dict:
    """raising frame, deepest repo frame, and (for recursion) the most repeated repo function."""
    frames = [(_short(f), ln, fn) for f, ln, fn in frames]
    while frames and frames[-1][0] == _short(__file__):  # the SIGALRM handler
        frames.pop()
    last = frames[-1] if frames else ("?", 0, "?")
    repo = [f for f in frames if f[0].startswith(("mechdsl", "compilers", "grammar"))]
    deepest = repo[-1] if repo else None
    info = {"frame": f"{last[0]}:{last[1]}", "func": last[2],
            "repo_frame": f"{deepest[0]}:{deepest[1]} {deepest[2]}" if deepest else None,
            "tail": [f"{f}:{ln} {fn}" for f, ln, fn in frames[-8:]]}
    if frames and ("RecursionError" in exc_type or len(frames) > 200):
        pool = repo or frames
        cnt = collections.Counter((f, fn) for f, _ln, fn in pool)
        (f, fn), _c = max(cnt.items(), key=lambda kv: (kv[1], kv[0]))
        info["recursive"] = f"{f} {fn}"
    return info


def _exc_name(exc: BaseException) -> str:
    t = type(exc)
    name = t.__name__ if t.__module__ in ("builtins", "__main__") else f"{t.__module__}.{t.__name__}"
    orig = getattr(exc, "orig_exc", None)  # lark VisitError wraps the real one
    if orig is not None:
        name += f"({type(orig).__name__})"
    return name


def group_key(out: dict) -> tuple:
    """How outcomes are grouped: (class, exception type, the raising frame file:line)."""
    cls = out["cls"]
    if cls in ("ok", "located", "solve_error"):
        return (cls,)
    if cls == "crash":
        return (cls, out.get("type", "?"), out.get("repo_frame") or out.get("frame") or "?")
    if cls == "timeout":
        return (cls, "Timeout", out.get("stage", "?"), out.get("recursive") or out.get("repo_frame") or "?")
    where = out.get("recursive") or out.get("frame", "?")
    return (cls, out.get("type", "?"), where)


_API = None


def _imports():
    global _API
    if _API is None:
        import logging
        import warnings

        warnings.simplefilter("ignore")
        logging.getLogger("pyomo").setLevel(logging.CRITICAL)
        from mechdsl import api
        from mechdsl.compilers.standard.build import NotLinear
        from mechdsl.errors import MechError
        import mechdsl.compilers.pyomo.model  # noqa: F401  (imported once per worker)
        _API = (api, NotLinear, MechError)
        _warm_up(api, NotLinear)
    return _API


WARM_UP = [  # tiny specs that run every stage once, so that lazy imports do not count against a timeout
    "param K integer >= 2 = 3;\nparam t[k in 1..K] = k / K;\ntype th in 1..K ~ uniform;\n"
    "var q[k in 1..K] >= 0, <= 1;\nvar p[k in 1..K] >= 0, <= 1;\nutility u(a, b) = t[a] * q[b] - p[b];\n"
    "ic IC[a in 1..K, b in 1..K: a != b]: u(a, a) >= u(a, b);\nir IR[a in 1..K]: u(a, a) >= 0;\n"
    "maximize E[th](p[th] - q[th]^2 / 2);\n",
    "var x >= 0, <= 1;\nvar y binary;\nconstraint C: x <= 0.5 -> y >= 1;\nmaximize sqrt(x + 1) + min(x, 0.3);\n",
]


def _warm_up(api, NotLinear):
    for text in WARM_UP:
        try:
            m = api.loads(text, "warm_up.mech")
            m.check()
            m.instance()
            try:
                m.compile_form()
            except NotLinear:
                pass
            m.compile()
        except Exception:  # noqa: BLE001 -- only imports matter here
            pass


def run_mutant(m: Mutant, workdir: str, timeout: float | None = None, solve: bool = False) -> dict:
    """Run one mutant in this process (with SIGALRM after ``timeout`` s); the outcome as a dict."""
    api, NotLinear, MechError = _imports()
    stem = m.spec[:-5] if m.spec.endswith(".mech") else m.spec
    spec_path = os.path.join(workdir, stem + ".mech")
    with open(spec_path, "wb") as fh:
        fh.write(m.text)
    data_path = None
    if m.data is not None:
        data_path = os.path.join(workdir, m.data_name or "data.toml")
        with open(data_path, "wb") as fh:
            fh.write(m.data)
    overrides = json.loads(m.override_map) if m.override_map is not None else (list(m.overrides) or None)
    stage = "load"
    t0 = time.perf_counter()
    out: dict = {}
    armed = [True]
    if timeout:
        def alarm(_sig, _frm):
            if armed[0]:
                raise FuzzTimeout()
        old = signal.signal(signal.SIGALRM, alarm)
        # repeating: an exception raised where Python ignores it (a weakref callback in the GC) is retried
        signal.setitimer(signal.ITIMER_REAL, timeout, 0.25)
    try:
        try:
            model = api.load(spec_path, data=data_path, overrides=overrides, progress=False)
            stage = "check"
            model.check()
            stage = "instance"
            model.instance()
            stage = "compile_form"
            linear = False
            try:
                built, _lazy = model.compile_form()
                linear = built.form.problem_class in ("LP", "QP", "MILP")
            except NotLinear:
                pass
            if not linear:
                stage = "compile"
                model.compile()
            if solve:
                stage = "solve"
                model.solve()
            out = {"cls": "ok"}
        finally:
            armed[0] = False
            if timeout:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except FuzzTimeout as exc:
        armed[0] = False
        tb = traceback.extract_tb(exc.__traceback__)
        out = {"cls": "timeout", "type": "Timeout", "msg": f"over {timeout} s (interrupted)"}
        out.update(_frames_info([(f.filename, f.lineno, f.name) for f in tb], "Timeout"))
    except MechError as exc:
        msg = str(exc)
        if getattr(exc, "exit_code", 2) == 1:
            cls = "solve_error"
        else:
            cls = "located" if is_located(msg) else "unlocated"
        out = {"cls": cls, "type": _exc_name(exc), "msg": msg[:2000]}
        if cls == "unlocated":
            tb = traceback.extract_tb(exc.__traceback__)
            out.update(_frames_info([(f.filename, f.lineno, f.name) for f in tb], out["type"]))
    except BaseException as exc:  # noqa: BLE001 -- everything else is a finding
        if isinstance(exc, KeyboardInterrupt) and not timeout:
            raise
        try:
            msg = str(exc)
        except BaseException:  # noqa: BLE001
            msg = "<str() failed>"
        out = {"cls": "exception", "type": _exc_name(exc), "msg": msg[:2000]}
        tb = traceback.extract_tb(exc.__traceback__)
        out.update(_frames_info([(f.filename, f.lineno, f.name) for f in tb], out["type"]))
        if isinstance(exc, (MemoryError, RecursionError)) or "Recursion" in out["type"]:
            out["restart"] = True
    finally:
        armed[0] = False
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    out["stage"] = stage
    out["secs"] = round(time.perf_counter() - t0, 3)
    if timeout and out["secs"] > timeout and out["cls"] != "timeout":
        # over the limit, but the alarm's exception was swallowed (e.g. raised inside a solver callback)
        out.update({"cls": "timeout", "type": "Timeout", "was": out["cls"],
                    "msg": f"over {timeout} s (finished as '{out['cls']}' after {out['secs']} s): "
                           + out.get("msg", "")[:300]})
    return out


# ============================================================================ the worker pool

GRACE = 4.0  #: seconds past the timeout before the watchdog kills a worker


def _worker(conn, workdir: str, timeout: float, mem_mb: int, solve: bool):
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        if mem_mb:
            import resource

            lim = mem_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _imports()
        dump = open(os.path.join(workdir, "faulthandler.txt"), "w")
        conn.send(("ready", None))
        while True:
            job = conn.recv()
            if job is None:
                break
            idx, m = job
            dump.seek(0)
            dump.truncate()
            faulthandler.dump_traceback_later(timeout + GRACE / 2, repeat=False, file=dump)
            try:
                out = run_mutant(m, workdir, timeout, solve)
            except FuzzTimeout:  # the alarm hit in the tiny window after the pipeline
                out = {"cls": "timeout", "type": "Timeout", "msg": f"over {timeout} s", "stage": "?",
                       "secs": timeout}
            finally:
                faulthandler.cancel_dump_traceback_later()
            conn.send((idx, out))
            if out.get("restart"):
                break
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass


def _parse_faulthandler(text: str) -> list[tuple[str, int, str]]:
    """Frames of the main thread's dump, outermost first."""
    frames = []
    block = text.split("\n\n")
    for b in block:
        if "most recent call first" in b and ("Current thread" in b or "Thread" in b):
            for ln in b.splitlines():
                m = re.match(r'\s*File "([^"]+)", line (\d+) in (\S+)', ln)
                if m:
                    frames.append((m.group(1), int(m.group(2)), m.group(3)))
            break
    return list(reversed(frames))


def _stage_of(frames) -> str:
    """The pipeline stage a dumped stack was in (from the API method on it)."""
    names = [fn for _f, _ln, fn in frames]
    for stage, fn in (("compile", "compile"), ("compile_form", "compile_form"), ("instance", "instance"),
                      ("check", "check"), ("load", "load"), ("solve", "solve")):
        if fn in names:
            return stage
    return "?"


class Runner:
    """A pool of worker processes, each running mutants with a wall-clock limit; hung workers are killed."""

    def __init__(self, jobs: int = 2, timeout: float = 10.0, mem_mb: int = 3000, solve: bool = False,
                 maxtasks: int = 400):
        self.jobs, self.timeout, self.mem_mb, self.solve, self.maxtasks = jobs, timeout, mem_mb, solve, maxtasks
        methods = mp.get_all_start_methods()
        self.ctx = mp.get_context("fork" if "fork" in methods else "spawn")
        self.tmp = tempfile.mkdtemp(prefix="mechdsl_fuzz_")
        self.workers: list[dict] = []
        self.restarts = 0
        for i in range(jobs):
            self.workers.append(self._spawn(i))

    def _spawn(self, slot: int) -> dict:
        wd = os.path.join(self.tmp, f"w{slot}")
        os.makedirs(wd, exist_ok=True)
        parent, child = self.ctx.Pipe()
        p = self.ctx.Process(target=_worker, args=(child, wd, self.timeout, self.mem_mb, self.solve), daemon=True)
        p.start()
        child.close()
        return {"slot": slot, "proc": p, "conn": parent, "job": None, "start": None, "tasks": 0,
                "ready": False, "wd": wd, "born": time.monotonic()}

    def _replace(self, w: dict, kill: bool = True):
        if kill and w["proc"].is_alive():
            w["proc"].kill()
        w["proc"].join(5)
        try:
            w["conn"].close()
        except OSError:
            pass
        self.restarts += 1
        self.workers[self.workers.index(w)] = self._spawn(w["slot"])

    def run(self, mutants: list[Mutant]):
        """Yield ``(index, outcome)`` for every mutant, in completion order."""
        self.calls = getattr(self, "calls", 0) + 1
        call = self.calls  # results of an abandoned earlier call are recognised and dropped
        pending = collections.deque(range(len(mutants)))
        remaining = len(mutants)
        while remaining:
            results = []
            for w in list(self.workers):
                if w["ready"] and w["job"] is None and pending:
                    if w["tasks"] >= self.maxtasks:
                        try:
                            w["conn"].send(None)
                        except OSError:
                            pass
                        self._replace(w, kill=False)
                        continue
                    idx = pending.popleft()
                    try:
                        w["conn"].send(((call, idx), mutants[idx]))
                    except OSError:
                        pending.appendleft(idx)
                        self._replace(w)
                        continue
                    w["job"], w["start"] = (call, idx), time.monotonic()
            ready = mpc.wait([w["conn"] for w in self.workers], timeout=0.25)
            now = time.monotonic()
            for w in list(self.workers):
                job = w["job"]
                mine = job is not None and job[0] == call
                if w["conn"] in ready:
                    try:
                        msg = w["conn"].recv()
                    except (EOFError, OSError):
                        msg = None
                    if msg is None:  # the worker died
                        if mine:
                            w["proc"].join(1)
                            results.append((job[1], {
                                "cls": "crash", "type": f"WorkerDied(exitcode={w['proc'].exitcode})",
                                "msg": "the worker process died", "stage": "?",
                                "secs": round(now - w["start"], 3)}))
                        self._replace(w)
                        continue
                    if msg[0] == "ready":
                        w["ready"] = True
                        continue
                    jid, out = msg
                    w["job"], w["start"] = None, None
                    w["tasks"] += 1
                    if jid[0] == call:
                        results.append((jid[1], out))
                    if out.get("restart"):
                        self._replace(w, kill=False)
                elif job is not None and now - w["start"] > self.timeout + GRACE:
                    w["proc"].kill()
                    w["proc"].join(5)
                    try:
                        with open(os.path.join(w["wd"], "faulthandler.txt")) as fh:
                            frames = _parse_faulthandler(fh.read())
                    except OSError:
                        frames = []
                    out = {"cls": "timeout", "type": "Timeout", "msg": f"over {self.timeout} s (killed)",
                           "stage": "?", "secs": round(now - w["start"], 3), "killed": True}
                    if frames:
                        out.update(_frames_info(frames, "Timeout"))
                        out["stage"] = _stage_of(frames)
                    if mine:
                        results.append((job[1], out))
                    self._replace(w, kill=False)
            for r in results:
                remaining -= 1
                yield r

    def run_one(self, m: Mutant) -> dict:
        return next(iter(self.run([m])))[1]

    def close(self):
        for w in self.workers:
            try:
                w["conn"].send(None)
            except OSError:
                pass
        for w in self.workers:
            w["proc"].join(3)
            if w["proc"].is_alive():
                w["proc"].kill()
                w["proc"].join(3)
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ============================================================================ shrinking (delta debugging)

SPLIT_TOKENS = re.compile(rb"\s+|[A-Za-z_0-9.]+|[^\sA-Za-z_0-9.]")


def _chunks(items: list, n: int) -> list[list]:
    k, r = divmod(len(items), n)
    out, i = [], 0
    for j in range(n):
        s = k + (1 if j < r else 0)
        out.append(items[i:i + s])
        i += s
    return [c for c in out if c]


class Shrinker:
    """ddmin (complements only) on lines, then tokens, then bytes, keeping the group key."""

    def __init__(self, runner: Runner, key: tuple, max_runs: int = 400, max_secs: float = 120.0):
        self.runner, self.key, self.max_runs, self.max_secs = runner, key, max_runs, max_secs
        self.runs = 0
        self.t0 = time.monotonic()
        self.cache: dict[str, bool] = {}

    def budget(self) -> bool:
        return self.runs < self.max_runs and time.monotonic() - self.t0 < self.max_secs

    def matches(self, out: dict) -> bool:
        """Still the same finding?  (A timeout or crash is one wherever it is interrupted.)"""
        if self.key[0] in ("timeout", "crash"):
            return out["cls"] == self.key[0]
        return group_key(out) == self.key

    def first_passing(self, cands: list[Mutant]) -> Mutant | None:
        """The first candidate (in order) that keeps the key, testing ``jobs`` at a time."""
        batch = max(1, self.runner.jobs)
        for i in range(0, len(cands), batch):
            if not self.budget():
                return None
            part = cands[i:i + batch]
            todo = [c for c in part if c.digest() not in self.cache]
            if todo:
                self.runs += len(todo)
                for j, out in self.runner.run(todo):
                    self.cache[todo[j].digest()] = self.matches(out)
            for c in part:
                if self.cache[c.digest()]:
                    return c
        return None

    def ddmin(self, m: Mutant, split, join, field_: str) -> Mutant:
        items = split(getattr(m, field_))
        n = 2
        while len(items) >= 2 and self.budget():
            chunks = _chunks(items, n)
            cands = []
            for i in range(len(chunks)):
                rest = [x for c in chunks[:i] + chunks[i + 1:] for x in c]
                cands.append(replace(m, **{field_: join(rest)}))
            hit = self.first_passing(cands)
            if hit is not None:
                m = hit
                items = split(getattr(m, field_))
                n = max(n - 1, 2)
                continue
            if n >= len(items):
                break
            n = min(len(items), 2 * n)
        return m

    def shrink(self, m: Mutant) -> Mutant:
        # drop the data file / overrides first when they do not matter
        for cand in (replace(m, data=None, data_name=None), replace(m, overrides=(), override_map=None)):
            if cand.digest() != m.digest() and self.budget():
                hit = self.first_passing([cand])
                if hit is not None:
                    m = hit
        if m.overrides:
            m = self.ddmin(m, list, tuple, "overrides")
        lines = lambda b: b.splitlines(keepends=True)  # noqa: E731
        toks = lambda b: SPLIT_TOKENS.findall(b) or [bytes([x]) for x in b]  # noqa: E731
        if m.text and self.budget():  # a finding in the data or the overrides: the spec may not matter
            hit = self.first_passing([replace(m, text=b"")])
            m = hit or m
        if m.data is not None:
            m = self.ddmin(m, lines, b"".join, "data")
            m = self.ddmin(m, toks, b"".join, "data")
        m = self.ddmin(m, lines, b"".join, "text")
        m = self.ddmin(m, toks, b"".join, "text")
        if len(m.text) <= 300:
            m = self.ddmin(m, lambda b: [bytes([x]) for x in b], b"".join, "text")
        return m


# ============================================================================ the campaign

FINDING = ("unlocated", "exception", "timeout", "crash")
CLASSES = ("ok", "located", "solve_error", "unlocated", "exception", "timeout", "crash")


def _preview(m: Mutant, limit: int = 400) -> str:
    text = m.text.decode("utf-8", "backslashreplace")
    text = re.sub(r"((?:1 \+ ){20,})", lambda mm: f"<{len(mm.group(1)) // 4} x '1 + '>", text)
    text = re.sub(r"((?:sqrt\(){20,})", lambda mm: f"<{len(mm.group(1)) // 5} x 'sqrt('>", text)
    text = re.sub(r"(\){20,})", lambda mm: f"<{len(mm.group(1))} x ')'>", text)
    text = re.sub(r"((?:- ){20,})", lambda mm: f"<{len(mm.group(1)) // 2} x '- '>", text)
    text = re.sub(r"(\[{20,})", lambda mm: f"<{len(mm.group(1))} x '['>", text)
    text = re.sub(r"(\]{20,})", lambda mm: f"<{len(mm.group(1))} x ']'>", text)
    if len(text) > limit:
        text = text[:limit] + f"... <{len(text) - limit} more chars>"
    extra = []
    if m.data is not None:
        extra.append(f"--data {m.data_name}: " + _preview(replace(m, text=m.data, data=None, overrides=(),
                                                                    override_map=None), 200))
    if m.overrides:
        extra.append("--set " + " --set ".join(o if len(o) < 80 else o[:80] + "..." for o in m.overrides))
    if m.override_map:
        extra.append("overrides=" + m.override_map[:200])
    return text + ("\n" + "\n".join(extra) if extra else "")


def _diff(m: Mutant, limit: int = 12) -> str:
    """The lines of the mutant that differ from its base spec (a unified diff, abbreviated)."""
    import difflib

    base = SPECS / m.spec
    if not base.exists():
        return _preview(m)
    old = base.read_text(encoding="utf-8").splitlines()
    new = m.text.decode("utf-8", "backslashreplace").splitlines()
    out = []
    for ln in difflib.unified_diff(old, new, m.spec, "mutant", n=0, lineterm=""):
        if ln.startswith(("---", "+++")):
            continue
        if len(ln) > 200:
            ln = _preview(replace(m, text=ln.encode(), data=None, overrides=(), override_map=None), 200)
        out.append(ln)
    if len(out) > limit:
        out = out[:limit] + [f"... ({len(out) - limit} more diff lines)"]
    if not out:
        out = ["(spec unchanged)"]
    if m.data is not None:
        out.append(f"--data {m.data_name}: " + m.data.decode("utf-8", "backslashreplace")[:200].replace("\n", "\\n"))
    if m.overrides:
        out.append("--set " + " --set ".join(o if len(o) < 80 else o[:80] + "..." for o in m.overrides))
    if m.override_map:
        out.append("overrides=" + m.override_map[:200])
    return "\n".join(out)


def source_digest() -> tuple[str, int]:
    """A digest of the package's source files (mechdsl/, compilers/, grammar/) and their number."""
    h = hashlib.sha1()
    files = sorted(p for d in ("mechdsl", "compilers", "grammar") for p in (ROOT / d).rglob("*")
                   if p.suffix in (".py", ".lark") and "__pycache__" not in p.parts)
    for p in files:
        h.update(str(p.relative_to(ROOT)).encode())
        try:
            h.update(p.read_bytes())
        except OSError:
            pass
    return h.hexdigest(), len(files)


def _git_head() -> str:
    try:
        head = (ROOT / ".git" / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            return (ROOT / ".git" / head[5:]).read_text().strip()[:12]
        return head[:12]
    except OSError:
        return "?"


def campaign(args) -> int:
    t0 = time.monotonic()
    digest0, nfiles = source_digest()
    if args.preload:
        # import (and warm up) mechdsl once, here: the forked workers share this snapshot of the code,
        # so an edit of the source tree during the campaign does not mix versions
        _imports()
    print(f"mechdsl source snapshot {digest0[:12]} ({nfiles} files; git HEAD {_git_head()}"
          f"{'; preloaded before forking' if args.preload else ''})", flush=True)
    corpus = load_corpus()
    mutants = generate(args.n, args.seed, corpus)
    gen_secs = time.monotonic() - t0
    print(f"generated {len(mutants)} distinct mutants of {len(corpus)} specs (seed {args.seed}) "
          f"in {gen_secs:.1f} s; running with {args.jobs} worker(s), timeout {args.timeout} s", flush=True)
    counts = collections.Counter()
    groups: dict[tuple, list[int]] = collections.defaultdict(list)
    outcomes: dict[int, dict] = {}
    stages = collections.Counter()
    solve_msgs = collections.Counter()
    slowest: list[tuple[float, int]] = []
    t1 = time.monotonic()
    last = t1
    with Runner(args.jobs, args.timeout, args.mem_mb, args.solve) as runner:
        done = 0
        for idx, out in runner.run(mutants):
            done += 1
            counts[out["cls"]] += 1
            stages[(out["cls"], out.get("stage", "?"))] += 1
            slowest.append((out.get("secs", 0.0), idx))
            if out["cls"] == "solve_error":
                solve_msgs[_template(out.get("msg", ""))] += 1
            if out["cls"] in FINDING:
                outcomes[idx] = out
                groups[group_key(out)].append(idx)
            now = time.monotonic()
            if now - last > args.progress_every:
                last = now
                rate = done / (now - t1)
                print(f"  {done}/{len(mutants)} ({rate:.1f}/s, eta {(len(mutants) - done) / rate:.0f} s) "
                      + " ".join(f"{c}={counts[c]}" for c in CLASSES if counts[c]), flush=True)
        run_secs = time.monotonic() - t1
        # representatives: the shortest mutant of each group
        reps = {}
        for key, idxs in groups.items():
            best = min(idxs, key=lambda i: (mutants[i].size(), i))
            reps[key] = (best, mutants[best])
        shrunk = {}
        slow_runner = None
        if args.shrink:
            for key in sorted(groups, key=lambda k: (k[0] == "timeout", -len(groups[k]), k)):
                best, m = reps[key]
                if key[0] == "timeout":
                    # a candidate still counts as slow past half the limit: that halves the cost of each step
                    if slow_runner is None:
                        slow_runner = Runner(args.jobs, max(1.0, args.timeout / 2), args.mem_mb, args.solve)
                    s = Shrinker(slow_runner, key, max_runs=max(8, args.shrink_runs // 8),
                                 max_secs=args.shrink_secs * 1.5)
                else:
                    s = Shrinker(runner, key, max_runs=args.shrink_runs, max_secs=args.shrink_secs)
                sm = s.shrink(m)
                shrunk[key] = (sm, s.runs)
                print(f"  shrunk {key[1]} @ {key[-1]}: {m.size()} -> {sm.size()} bytes ({s.runs} runs)", flush=True)
            if slow_runner is not None:
                slow_runner.close()
        restarts = runner.restarts
    total_secs = time.monotonic() - t0
    digest1, _ = source_digest()
    args.source = {"digest": digest0, "git_head": _git_head(), "changed_during_run": digest1 != digest0,
                   "preloaded": bool(args.preload)}
    if digest1 != digest0:
        print(f"note: the mechdsl source changed during the campaign ({digest0[:12]} -> {digest1[:12]})"
              + ("; the workers ran the snapshot imported at the start" if args.preload else
                 "; workers started later may have run the new code"), flush=True)
    return report(args, mutants, counts, stages, groups, outcomes, reps, shrunk, slowest, run_secs,
                  total_secs, restarts, solve_msgs)


def _template(msg: str) -> str:
    """The first line of a message with file names and numbers blanked (to count kinds of messages)."""
    first = (msg.strip().splitlines() or [""])[0]
    first = re.sub(r"\S+\.(?:mech|toml)(?::\d+:\d+)?", "FILE", first)
    return re.sub(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?", "N", first)[:160]


def report(args, mutants, counts, stages, groups, outcomes, reps, shrunk, slowest, run_secs, total_secs,
           restarts, solve_msgs=None) -> int:
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("group_*"):
        old.unlink()
    n = len(mutants)
    print()
    print(f"=== fuzz summary: {n} mutants, seed {args.seed}, timeout {args.timeout} s, {args.jobs} job(s), "
          f"{run_secs:.0f} s ({n / max(run_secs, 1e-9):.1f} mutants/s), {restarts} worker restart(s)")
    print(f"{'class':<14}{'count':>8}{'share':>9}")
    for c in CLASSES:
        print(f"{c:<14}{counts[c]:>8}{100 * counts[c] / max(n, 1):>8.1f}%")
    print("stage reached, per class: " + ", ".join(f"{c}/{s}={k}" for (c, s), k in sorted(stages.items())))
    slowest.sort(reverse=True)
    print("slowest runs: " + ", ".join(f"{secs:.1f}s (#{i} {mutants[i].spec} {'+'.join(mutants[i].ops)})"
                                       for secs, i in slowest[:5]))
    if solve_msgs:
        print("solve_error (exit 1, not a spec error) messages: "
              + "; ".join(f"{k} x{c}" for k, c in solve_msgs.most_common(5)))
    summary = {"source": getattr(args, "source", None), "n": n, "seed": args.seed, "timeout": args.timeout, "jobs": args.jobs, "run_secs": run_secs,
               "total_secs": total_secs, "rate": n / max(run_secs, 1e-9), "counts": dict(counts),
               "slowest": [[secs, mutants[i].spec, list(mutants[i].ops)] for secs, i in slowest[:20]],
               "solve_error_messages": dict(solve_msgs or {}), "groups": []}
    ordered = sorted(groups, key=lambda k: (FINDING.index(k[0]), -len(groups[k]), k))
    if ordered:
        print(f"\n{len(ordered)} finding group(s) (class, type, raising frame):")
    for g, key in enumerate(ordered, 1):
        idxs = groups[key]
        best, m = reps[key]
        o = outcomes[best]
        sm, sruns = shrunk.get(key, (m, 0))
        stem = f"group_{g:02d}"
        (out_dir / f"{stem}.mech").write_bytes(sm.text)
        if sm.data is not None:
            (out_dir / f"{stem}.toml").write_bytes(sm.data)
        specs = collections.Counter(mutants[i].spec for i in idxs)
        ops = collections.Counter(op for i in idxs for op in mutants[i].ops)
        entry = {"group": g, "class": key[0], "key": list(key), "count": len(idxs), "type": o.get("type"),
                 "message": o.get("msg", "")[:1000], "frame": o.get("frame"), "repo_frame": o.get("repo_frame"),
                 "recursive": o.get("recursive"), "tail": o.get("tail"), "stage": o.get("stage"),
                 "specs": dict(specs), "ops": dict(ops), "reproducer": f"{stem}.mech",
                 "base_spec": sm.spec, "data": f"{stem}.toml" if sm.data is not None else None,
                 "data_name": sm.data_name, "overrides": list(sm.overrides), "override_map": sm.override_map,
                 "original_size": m.size(), "shrunk_size": sm.size(), "shrink_runs": sruns,
                 "examples_msgs": list(dict.fromkeys(outcomes[i].get("msg", "")[:160] for i in idxs))[:5]}
        (out_dir / f"{stem}.json").write_text(json.dumps(entry, indent=2))
        summary["groups"].append(entry)
        where = o.get("recursive") or o.get("frame")
        print(f"\n[{g:02d}] {key[0]:<9} x{len(idxs):<5} {o.get('type')}  raised at {where}"
              f"{'' if o.get('repo_frame') in (None, where) else '  (mechdsl: ' + o['repo_frame'] + ')'}"
              f"  stage={o.get('stage')}")
        msg = o.get("msg", "").strip().splitlines()
        if msg:
            print(f"     message: {msg[0][:160]}")
        print(f"     reproducer ({sm.size()} bytes, {out_dir / (stem + '.mech')}, base {sm.spec}):")
        for ln in _preview(sm).splitlines()[:12]:
            print(f"       | {ln}")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    bad = counts["exception"] + counts["timeout"] + counts["crash"]
    print(f"\nfindings written to {out_dir}/ (summary.json, group_NN.mech/.toml/.json)")
    print(f"result: {'PASS' if not bad else 'FAIL'}: {counts['exception']} exception(s), {counts['timeout']} "
          f"timeout(s), {counts['crash']} crash(es), {counts['unlocated']} MechError(s) without a location")
    return 0 if not bad else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10000, help="number of distinct mutants")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=10.0, help="wall-clock limit per mutant (s)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="/tmp/fuzz_out")
    ap.add_argument("--shrink", action="store_true", help="delta-debug each group's shortest mutant")
    ap.add_argument("--shrink-runs", type=int, default=400, help="runs per group when shrinking")
    ap.add_argument("--shrink-secs", type=float, default=120.0, help="seconds per group when shrinking")
    ap.add_argument("--solve", action="store_true", help="also run Model.solve() (slow)")
    ap.add_argument("--mem-mb", type=int, default=3000, help="address-space limit per worker (MB, 0: none)")
    ap.add_argument("--no-preload", dest="preload", action="store_false",
                    help="do not import mechdsl before forking the workers (each imports it from disk)")
    ap.add_argument("--progress-every", type=float, default=30.0, help="seconds between progress lines")
    args = ap.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # one thread per worker: --jobs is the parallelism
    return campaign(args)


if __name__ == "__main__":
    sys.exit(main())
