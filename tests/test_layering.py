"""The pipeline's layering: no stage imports a later stage.

The stages, in pipeline order (each module of ``mechdsl/``, ``compilers/`` and
``grammar/`` is placed in exactly one; :func:`test_every_module_has_a_stage`
fails for a new module until it is placed here):

    parse     mechdsl.syntax, mechdsl.mechanisms (the registered kinds extend the grammar and
              build AST; the parser loads them), mechdsl.grammar (the grammar files)
    check     mechdsl.semantics
    ir        mechdsl.ir
    data      mechdsl.data, mechdsl.continuous, mechdsl.instance, mechdsl.evaluate (binding data, evaluating the IR)
    passes    mechdsl.passes, mechdsl.analysis (the reduction passes and their dominance graph)
    form      mechdsl.compilers.standard (the compiled form), mechdsl.compilers (package init)
    backends  mechdsl.compilers.highs, mechdsl.compilers.pyomo, mechdsl.compilers.casadi (NLPs straight
              from the IR to CasADi MX), mechdsl.compilers.backends
    solve     mechdsl.solving (solve strategies over the form: one solve, IC by constraint
              generation, separation)
    verify    mechdsl.verify
    front     mechdsl.result, mechdsl.api, mechdsl.cli, mechdsl (the package's facade)

``mechdsl.errors``, ``mechdsl.span`` and ``mechdsl.progress`` are shared
utilities: every stage may import them, and they import only each other.

Every ``import`` / ``from ... import`` of every module is read with ``ast``:
module-level ones and those inside functions, classes and ``if`` blocks alike
(plus ``importlib.import_module("...")`` with a literal name), relative ones
resolved against the module's package, and ``compilers.*`` read as
``mechdsl.compilers.*`` (the package-dir alias in ``pyproject.toml``).  Besides
the stage order:

* the solver libraries (``pyomo``, ``casadi``, ``highspy``) are imported from the
  ``backends`` stage on, never before;
* the two backends are independent: ``compilers.highs`` (highspy direct) imports
  neither Pyomo nor ``compilers.pyomo``, and ``compilers.pyomo`` imports neither
  ``highspy`` nor ``compilers.highs`` (it reaches HiGHS through Pyomo's own interface).

An import that breaks a rule is allowed only if it is listed in
:data:`EXCEPTIONS` with its reason; an exception that no longer matches any
import fails :func:`test_exceptions_are_still_needed`, so the list stays true.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Source directory -> the package it is installed as (pyproject.toml's package-dir).
PACKAGE_DIRS = {"mechdsl": "mechdsl", "compilers": "mechdsl.compilers", "grammar": "mechdsl.grammar"}

SHARED = ("mechdsl.errors", "mechdsl.span", "mechdsl.progress")

#: Stages in pipeline order: (stage, module prefixes); a prefix covers the module and its submodules.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("parse", ("mechdsl.syntax", "mechdsl.mechanisms", "mechdsl.grammar")),
    ("check", ("mechdsl.semantics",)),
    ("ir", ("mechdsl.ir",)),
    ("data", ("mechdsl.data", "mechdsl.continuous", "mechdsl.instance", "mechdsl.evaluate")),
    ("passes", ("mechdsl.passes", "mechdsl.analysis")),
    ("form", ("mechdsl.compilers.standard",)),
    ("backends", ("mechdsl.compilers.highs", "mechdsl.compilers.pyomo", "mechdsl.compilers.casadi",
                  "mechdsl.compilers.backends")),
    ("solve", ("mechdsl.solving",)),
    ("verify", ("mechdsl.verify",)),
    ("front", ("mechdsl.result", "mechdsl.api", "mechdsl.cli")),
]

#: Package ``__init__`` modules, placed by themselves (a prefix would also cover their subpackages).
#: ``mechdsl.compilers`` runs whenever the compiled form is imported, so it sits with the form;
#: ``mechdsl`` is the public facade re-exporting the API.
PACKAGE_INITS = {"mechdsl.compilers": "form", "mechdsl": "front"}

#: Third-party libraries and the first stage allowed to import them.
THIRD_PARTY_FROM = {"pyomo": "backends", "casadi": "backends", "highspy": "backends"}

#: Imports forbidden between siblings of one stage: importer prefix -> forbidden prefixes.
SIBLING_RULES = {
    "mechdsl.compilers.highs": ("mechdsl.compilers.pyomo", "pyomo", "casadi"),
    "mechdsl.compilers.pyomo": ("mechdsl.compilers.highs", "highspy"),
    # The CasADi NLP backend compiles the IR itself: no Pyomo, no HiGHS.
    "mechdsl.compilers.casadi": ("mechdsl.compilers.pyomo", "mechdsl.compilers.highs", "pyomo", "highspy"),
}


@dataclass(frozen=True)
class Allowed:
    importer: str   #: module (or package prefix) doing the import
    imported: str   #: module (or prefix) imported
    reason: str


#: The known exceptions, each with its reason.
EXCEPTIONS: list[Allowed] = [
    Allowed("mechdsl.solving", "mechdsl.verify",
            "violated_keys, the separation of the repair loop, measures the slack of a spec "
            "constraint with verify's own _slack, so that separation and verification agree on "
            "what counts as violated"),
]


# --------------------------------------------------------------------------- reading the code

def _covers(prefix: str, name: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def stage_of(name: str) -> str | None:
    """The stage of a module name (``None`` for a third-party or standard-library module)."""
    if name in SHARED or any(_covers(s, name) for s in SHARED):
        return "shared"
    best, best_len = None, -1
    for stage, prefixes in STAGES:
        for p in prefixes:
            if _covers(p, name) and len(p) > best_len:
                best, best_len = stage, len(p)
    if best is not None:
        return best
    # An attribute of a package init (``from mechdsl import __version__``) or an unplaced module.
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        head = ".".join(parts[:k])
        if head in PACKAGE_INITS:
            return PACKAGE_INITS[head]
    return None


ORDER = {stage: i for i, (stage, _) in enumerate(STAGES)}


def modules() -> dict[str, Path]:
    """Every module of the project: installed name -> file."""
    out = {}
    for src, pkg in PACKAGE_DIRS.items():
        base = ROOT / src
        for path in sorted(base.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(base).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([pkg, *parts])] = path
    return out


def _canonical(name: str) -> str:
    """``compilers.x`` -> ``mechdsl.compilers.x`` (the source-tree name of an installed package)."""
    for src, pkg in PACKAGE_DIRS.items():
        if src != pkg and _covers(src, name):
            return pkg + name[len(src):]
    return name


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.importer} imports {self.imported}"


def imports_of(name: str, path: Path) -> list[Import]:
    """Every import in the module (at any depth), resolved to absolute module names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    rel_file = str(path.relative_to(ROOT))
    found = []

    def resolve(level: int, module: str | None) -> str:
        if level == 0:
            return _canonical(module or "")
        base = package.split(".")
        if level > 1:
            base = base[: len(base) - (level - 1)]
        return ".".join(base + ([module] if module else []))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                found.append(Import(name, _canonical(a.name), rel_file, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.module == "__future__":
                continue
            mod = resolve(node.level, node.module)
            for a in node.names:
                # ``from pkg import x``: x may be a submodule; its stage is pkg's unless x is placed itself.
                found.append(Import(name, mod if a.name == "*" else f"{mod}.{a.name}", rel_file, node.lineno))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            fname = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if fname in ("import_module", "__import__"):
                target = node.args[0].value
                if target.startswith("."):
                    level = len(target) - len(target.lstrip("."))
                    target = resolve(level, target.lstrip(".") or None)
                found.append(Import(name, _canonical(target), rel_file, node.lineno))
    return found


def _top(name: str) -> str:
    return name.split(".")[0]


def violations() -> list[tuple[Import, str]]:
    """Every import that breaks a rule, with the rule it breaks."""
    out = []
    for name, path in modules().items():
        own = stage_of(name)
        for imp in imports_of(name, path):
            target = imp.imported
            theirs = stage_of(target)
            if own == "shared":
                if theirs not in (None, "shared"):
                    out.append((imp, f"a shared utility imports the {theirs} stage"))
                continue
            if own is None:
                continue  # reported by test_every_module_has_a_stage
            if theirs is not None and theirs != "shared" and ORDER[theirs] > ORDER[own]:
                out.append((imp, f"the {own} stage imports the later {theirs} stage"))
            lib = _top(target)
            if theirs is None and lib in THIRD_PARTY_FROM and ORDER[own] < ORDER[THIRD_PARTY_FROM[lib]]:
                out.append((imp, f"the {own} stage imports {lib}, a {THIRD_PARTY_FROM[lib]}-stage library"))
            for importer, banned in SIBLING_RULES.items():
                if _covers(importer, name) and any(_covers(b, target) for b in banned):
                    out.append((imp, f"{importer} must not depend on {target}"))
    return out


def _allowed(imp: Import) -> Allowed | None:
    return next((a for a in EXCEPTIONS if _covers(a.importer, imp.importer) and _covers(a.imported, imp.imported)),
                None)


# --------------------------------------------------------------------------- the tests

def test_every_module_has_a_stage():
    unplaced = [n for n in modules() if stage_of(n) is None]
    assert not unplaced, f"place these modules in a stage of tests/test_layering.py: {unplaced}"


def test_every_stage_prefix_names_existing_code():
    mods = modules()
    for stage, prefixes in STAGES:
        for p in prefixes:
            assert any(_covers(p, m) for m in mods), f"stage {stage}: no module {p} (renamed or removed?)"
    for s in SHARED:
        assert s in mods, f"shared utility {s} does not exist"
    for p in PACKAGE_INITS:
        assert p in mods


def test_no_stage_imports_a_later_stage():
    bad = [f"{imp}  ({rule})" for imp, rule in violations() if _allowed(imp) is None]
    assert not bad, "layering violations (fix the import, or list it in EXCEPTIONS with its reason):\n" + \
        "\n".join(bad)


def test_exceptions_are_still_needed():
    used = {_allowed(imp) for imp, _ in violations()} - {None}
    stale = [a for a in EXCEPTIONS if a not in used]
    assert not stale, f"these exceptions match no violating import any more; remove them: {stale}"
    for a in EXCEPTIONS:
        assert a.reason.strip(), f"exception {a.importer} -> {a.imported} has no reason"


def test_the_reader_sees_every_kind_of_import(tmp_path):
    """The checker is not vacuous: function-level, relative, aliased and importlib imports are all seen."""
    src = tmp_path / "probe.py"
    src.write_text(
        "import pyomo.environ as pyo\n"
        "from ..ir import nodes\n"
        "from . import chain\n"
        "def f():\n"
        "    from compilers.pyomo.model import compile_problem\n"
        "    import importlib\n"
        "    importlib.import_module('mechdsl.verify')\n"
        "class C:\n"
        "    def g(self):\n"
        "        from .. import api\n",
        encoding="utf-8")
    global ROOT
    old, ROOT = ROOT, tmp_path
    try:
        got = {i.imported for i in imports_of("mechdsl.passes.probe", src)}
    finally:
        ROOT = old
    assert got == {"pyomo.environ", "mechdsl.ir.nodes", "mechdsl.passes.chain",
                   "mechdsl.compilers.pyomo.model.compile_problem", "importlib", "mechdsl.verify",
                   "mechdsl.api"}
    assert stage_of("mechdsl.compilers.pyomo.model.compile_problem") == "backends"
    assert stage_of("mechdsl.passes.chain") == "passes" and stage_of("mechdsl.__version__") == "front"
    assert stage_of("mechdsl.compilers") == "form" and stage_of("mechdsl.errors") == "shared"


def test_early_stages_load_no_solver_at_runtime():
    """Importing every module before the backends (in a fresh interpreter) loads no solver library.

    The ``ast`` check sees each module's own imports; this one sees what they load transitively at
    import time, including through ``mechdsl/__init__.py`` (which imports the API).
    """
    early = sorted(n for n in modules()
                   if stage_of(n) == "shared" or (stage_of(n) in ORDER and ORDER[stage_of(n)] < ORDER["backends"]))
    code = ("import importlib, sys\n"
            f"for m in {early!r}:\n"
            "    importlib.import_module(m)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pyomo', 'casadi', 'highspy')\n"
            "             or m.startswith(('mechdsl.compilers.pyomo', 'mechdsl.compilers.highs')))\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT / "tests")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"loaded at import time: {out.stdout.strip()}"
