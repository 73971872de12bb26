"""The documentation cannot rot: every ``mech`` example in docs/*.md parses and checks, the language
reference covers every construct of the grammar, and the Pygments lexer (mechdsl/lexer.py) highlights
every shipped spec and every example without an Error token.

Code blocks are fenced with three backticks and the info string ``mech``; the words after it say how
the example is tested (docs/language.md, "How the examples are tested"):

* ``mech``: a complete spec, parsed, checked and bound to its data, as ``mechdsl check`` does;
* ``mech --set NAME=VALUE ...``: the same, with those overrides (for params the spec leaves to data);
* ``mech fragment``: a piece of a spec that uses names declared elsewhere; it must parse, as it stands
  (declarations), inside ``aux _fragment { ... }`` (the items of an aux problem) or as the expression
  of ``report _fragment = (...);``.
"""
from __future__ import annotations

import importlib.util
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

import mechdsl
from mechdsl.syntax import parse

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LANGUAGE = DOCS / "language.md"
SPECS = ROOT / "specs"

_FENCE = re.compile(r"^(`{3,}|~{3,})\s*(\S*)\s*(.*)$")


@dataclass(frozen=True)
class Example:
    path: Path
    line: int          #: line of the opening fence
    info: tuple        #: the words after "mech"
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def fragment(self) -> bool:
        return "fragment" in self.info

    @property
    def overrides(self) -> list[str]:
        words = list(self.info)
        return [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--set"]


def examples(path: Path) -> list[Example]:
    """The ``mech`` code blocks of a Markdown file (fences of backticks or tildes, not indented)."""
    out, lines, i = [], path.read_text(encoding="utf-8").splitlines(), 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, rest = m.groups()
        j = i + 1
        while j < len(lines) and not lines[j].startswith(fence[0] * len(fence)):
            j += 1
        if lang == "mech":
            out.append(Example(path, i + 1, tuple(shlex.split(rest)), "\n".join(lines[i + 1:j]) + "\n"))
        i = j + 1
    return out


DOC_FILES = sorted(DOCS.glob("*.md"))
EXAMPLES = [e for f in DOC_FILES for e in examples(f)]


def _wrappings(text: str):
    yield text
    yield "aux _fragment {\n" + text + "}\n"
    yield "report _fragment = (\n" + text.rstrip().rstrip(";") + "\n);\n"


def _parses_wrapped(ex: Example) -> None:
    errors = []
    for wrapped in _wrappings(ex.text):
        try:
            parse(wrapped, ex.where)
            return
        except mechdsl.MechSyntaxError as exc:
            errors.append(str(exc))
    pytest.fail(f"{ex.where}: the fragment parses neither as declarations, nor as aux items, nor as an "
                f"expression:\n" + "\n".join(errors))


def test_the_reference_exists_and_has_examples():
    assert LANGUAGE.is_file()
    own = [e for e in EXAMPLES if e.path == LANGUAGE]
    assert len(own) >= 25
    assert sum(not e.fragment for e in own) > 3 * sum(e.fragment for e in own), "prefer complete examples"


@pytest.mark.parametrize("ex", EXAMPLES, ids=lambda e: e.where)
def test_example_parses_and_checks(ex: Example):
    if ex.fragment:
        _parses_wrapped(ex)
        return
    try:
        model = mechdsl.loads(ex.text, ex.where, overrides=ex.overrides or None)
        model.check()
        model.instance()  # binds the data and solves the auxiliary problems, as `mechdsl check`
    except mechdsl.MechError as exc:
        pytest.fail(f"{ex.where}: the example does not check:\n{exc}")


@pytest.mark.parametrize("ex", [e for e in EXAMPLES if not e.fragment], ids=lambda e: e.where)
def test_example_solves_and_verifies(ex: Example):
    """The complete examples are small: each also solves, and the answer satisfies the constraints as written
    (except where the example declares ``check`` constraints, which are verified but deliberately not imposed).
    Feasibility, not the optimality certificate: that is the business of the solver tests."""
    res = mechdsl.loads(ex.text, ex.where, overrides=ex.overrides or None).solve()
    assert res.ok, f"{ex.where}: {res.status}"
    if res.verification is not None and not re.search(r"^\s*check\s", ex.text, re.M):
        assert res.verification.feasible, f"{ex.where}: the solution violates the constraints"


_VALUE_COMMENT = re.compile(r"^param (\w+) = [^#]*;\s*#\s*(-?\d+(?:\.\d+)?)\s*(?:\(|$)")


def test_values_stated_in_comments_are_right():
    """``param b = -2^2;  # -4``: a value the reference states in a comment is the value mechdsl computes."""
    checked = 0
    for ex in EXAMPLES:
        if ex.fragment:
            continue
        claims = [m.groups() for m in map(_VALUE_COMMENT.match, ex.text.splitlines()) if m]
        if not claims:
            continue
        params = mechdsl.loads(ex.text, ex.where, overrides=ex.overrides or None).instance().params
        for name, value in claims:
            assert params[name] == pytest.approx(float(value)), f"{ex.where}: {name} = {params[name]}, not {value}"
            checked += 1
    assert checked >= 5


def test_fence_info_words_are_known():
    for ex in EXAMPLES:
        words = list(ex.info)
        i = 0
        while i < len(words):
            if words[i] == "fragment":
                i += 1
            elif words[i] == "--set" and i + 1 < len(words) and "=" in words[i + 1]:
                i += 2
            else:
                pytest.fail(f"{ex.where}: unknown word '{words[i]}' after ```mech (use fragment or --set N=V)")


# ------------------------------------------------------------------ the reference covers the grammar
def _parser():
    from mechdsl.syntax.parser import _parser as lark_parser

    return lark_parser()


def _trees_and_tokens(texts):
    from lark import Token, Tree

    rules, tokens = set(), set()
    parser = _parser()
    for text in texts:
        tokens.update(str(t) for t in parser.lex(text))  # the keywords too (the tree drops them)
        stack = [parser.parse(text)]
        while stack:
            node = stack.pop()
            if isinstance(node, Tree):
                rules.add(str(node.data))
                stack.extend(node.children)
            elif isinstance(node, Token):
                tokens.add(str(node))
    return rules, tokens


def _reference_texts():
    texts = []
    for ex in examples(LANGUAGE):
        for wrapped in (_wrappings(ex.text) if ex.fragment else [ex.text]):
            try:
                parse(wrapped)
            except mechdsl.MechSyntaxError:
                continue
            texts.append(wrapped)
            break
    return texts


def test_reference_covers_every_grammar_rule():
    """Every rule (and alternative with a name) of grammar/mech.lark and the mechanism fragments appears in
    the parse tree of some example of docs/language.md."""
    parser = _parser()
    wanted = set()
    for r in parser.rules:
        name = str(r.alias or r.origin.name)
        if name.startswith("_") or (r.alias is None and r.options.expand1):
            continue  # helper rules Lark generates, and `?rule`s that are inlined
        wanted.add(name)
    wanted -= {"start"}
    rules, _ = _trees_and_tokens(_reference_texts())
    missing = sorted(wanted - rules)
    assert not missing, f"docs/language.md has no example of: {missing}"


def test_reference_uses_every_keyword_operator_and_builtin():
    from mechdsl.semantics.check import BUILTINS
    from mechdsl.syntax.parser import _expected_keywords

    parser = _parser()
    words = _expected_keywords(parser, [t.name for t in parser.terminals])
    operators = set()
    for t in parser.terminals:
        value = t.pattern.value
        if t.pattern.type == "str" and not value.isidentifier():
            operators.add(value)
        elif t.name in ("BOUND_OP", "COMP_OP"):
            operators.update(v for v in value[3:-1].split("|"))
    operators = {re.sub(r"\\(.)", r"\1", o) for o in operators}
    _, tokens = _trees_and_tokens(_reference_texts())
    text = LANGUAGE.read_text(encoding="utf-8")
    missing = sorted((words | set(BUILTINS)) - tokens)
    assert not missing, f"docs/language.md has no example using: {missing}"
    missing_ops = sorted(o for o in operators if o not in tokens)
    assert not missing_ops, f"docs/language.md has no example using: {missing_ops}"
    for comment in ("#", "//"):
        assert any(comment in ex.text for ex in examples(LANGUAGE)), comment
    assert "reserved words" in text.lower()


# ------------------------------------------------------------------ the Pygments lexer
needs_pygments = pytest.mark.skipif(importlib.util.find_spec("pygments") is None,
                                    reason="Pygments is not installed (pip install mechdsl[docs])")


def _lex(text: str):
    from mechdsl.lexer import MechLexer

    return list(MechLexer().get_tokens(text))


SPEC_FILES = sorted(SPECS.glob("*.mech"))


@needs_pygments
@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.name)
def test_lexer_highlights_every_spec_without_errors(path):
    from pygments.token import Error

    text = path.read_text(encoding="utf-8")
    toks = _lex(text)
    bad = [(t, v) for t, v in toks if t in Error]
    assert not bad, f"{path.name}: Error tokens {bad[:10]}"
    assert "".join(v for _, v in toks) == (text if text.endswith("\n") else text + "\n")


@needs_pygments
def test_lexer_highlights_every_docs_example_without_errors():
    from pygments.token import Error

    for ex in EXAMPLES:
        bad = [(t, v) for t, v in _lex(ex.text) if t in Error]
        assert not bad, f"{ex.where}: Error tokens {bad[:10]}"


def _keyword_contexts() -> dict:
    """Every keyword of the grammar (core and mechanism fragments) and built-in function, each in a text
    where it starts a token as it would in a spec."""
    from mechdsl.semantics.check import BUILTINS
    from mechdsl.syntax.parser import _expected_keywords

    parser = _parser()
    words = _expected_keywords(parser, [t.name for t in parser.terminals])
    iterated = ("sum", "prod", "max", "min", "argmax", "argmin", "forall", "exists")
    contexts = {}
    for w in words | set(BUILTINS):
        if w in iterated:
            contexts[w] = f"{w}{{i in 1..2}} x"
        elif w in BUILTINS or w == "complements":
            contexts[w] = f"{w}(x)"
        elif w == "E":
            contexts[w] = "E[th](x)"
        else:
            contexts[w] = w
    return contexts


@needs_pygments
def test_lexer_knows_every_keyword_of_the_grammar():
    """A keyword added to the grammar (or a mechanism fragment) must be highlighted as one."""
    from pygments.token import Keyword, Name, Operator

    for w, text in sorted(_keyword_contexts().items()):
        first = next((t, v) for t, v in _lex(text) if v.strip())
        assert first[1] == w, (w, first)
        assert first[0] in Keyword or first[0] in Name.Builtin or first[0] in Operator.Word, (w, first)


@needs_pygments
def test_lexer_marks_what_the_grammar_cannot_contain():
    from pygments.token import Error

    assert any(t in Error for t, _ in _lex("param a = 1 @ 2;\n"))
    toks = [(t, v) for t, v in _lex("param K integer >= 1 = 3;  # comment\n") if v.strip()]
    from pygments.token import Comment, Keyword, Name, Number

    assert toks[0] == (Keyword.Declaration, "param") and toks[1] == (Name.Variable, "K")
    assert toks[2] == (Keyword.Type, "integer") and toks[4][0] in Number and toks[-1][0] in Comment


@needs_pygments
def test_lexer_is_registered_with_pygments():
    """The ``pygments.lexers`` entry point (pyproject.toml): by alias and by file name, once installed."""
    import tomllib
    from importlib.metadata import entry_points

    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert conf["project"]["entry-points"]["pygments.lexers"]["mech"] == "mechdsl.lexer:MechLexer"
    if not any(ep.value == "mechdsl.lexer:MechLexer" for ep in entry_points(group="pygments.lexers")):
        pytest.skip("mechdsl is installed without the entry point (reinstall: pip install -e .)")
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename

    from mechdsl.lexer import MechLexer

    assert isinstance(get_lexer_by_name("mech"), MechLexer)
    assert isinstance(get_lexer_for_filename("screening.mech"), MechLexer)


@needs_pygments
def test_lexer_html_output():
    from pygments import highlight
    from pygments.formatters import HtmlFormatter

    from mechdsl.lexer import MechLexer

    html = highlight((SPECS / "screening.mech").read_text(), MechLexer(), HtmlFormatter())
    assert 'class="kd">param</span>' in html and 'class="err"' not in html


# ------------------------------------------------------------------ the TextMate grammar (VS Code)
TEXTMATE = ROOT / "editors" / "vscode" / "syntaxes" / "mech.tmLanguage.json"


def _textmate_patterns(node, path=""):
    """(path, scope name, compiled regex) of every ``match`` in the grammar."""
    if isinstance(node, dict):
        if "match" in node:
            yield path, node.get("name", ""), re.compile(node["match"], re.M), node
        for k, v in node.items():
            yield from _textmate_patterns(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _textmate_patterns(v, f"{path}/{i}")


def test_textmate_grammar_is_valid_and_knows_every_keyword():
    import json

    grammar = json.loads(TEXTMATE.read_text(encoding="utf-8"))
    manifest = json.loads((TEXTMATE.parents[1] / "package.json").read_text(encoding="utf-8"))
    assert grammar["scopeName"] == manifest["contributes"]["grammars"][0]["scopeName"] == "source.mech"
    assert manifest["contributes"]["languages"][0]["extensions"] == [".mech"]
    for ref in grammar["patterns"]:
        assert ref["include"].lstrip("#") in grammar["repository"], ref
    pats = list(_textmate_patterns(grammar["repository"]))
    assert pats
    keyword_pats = [(p, rx) for p, name, rx, _ in pats
                    if name.startswith(("storage.", "keyword.", "support."))]
    for w, text in sorted(_keyword_contexts().items()):
        assert any((m := rx.match(text)) and m.group(0) == w for _, rx in keyword_pats), \
            f"the TextMate grammar does not highlight '{w}' as a keyword"
    # a declaration line: keyword, then the declared name
    decl = next(rx for p, name, rx, node in pats if "captures" in node and "param" in node["match"])
    m = decl.match("param K integer = 3;")
    assert m and m.group(1) == "param" and m.group(2) == "K"
