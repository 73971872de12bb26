"""The wheel ships every package and grammar file (an editable install would hide a missing one)."""
import tomllib
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_directory_is_declared():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(conf["packages"])
    mapping = conf["package-dir"]  # package name -> directory
    found = set()
    for pkg, folder in mapping.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            name = ".".join([pkg, *rel.parts]) if rel.parts else pkg
            if not any(part.startswith((".", "_")) for part in rel.parts):
                found.add(name)
    # mechdsl.compilers/grammar live under their own mapping; drop the double-counted view through "mechdsl".
    assert found - declared == set(), f"packages missing from pyproject.toml: {sorted(found - declared)}"


def test_grammar_files_are_package_data():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = conf["mechdsl.grammar"]
    files = [p.relative_to(ROOT / "grammar").as_posix() for p in (ROOT / "grammar").rglob("*.lark")]
    from fnmatch import fnmatch
    assert files and all(any(fnmatch(f, pat) for pat in patterns) for f in files)
    assert resources.files("mechdsl.grammar").joinpath("mech.lark").is_file()
