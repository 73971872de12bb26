"""Parse .mech text into an :class:`~mechdsl.syntax.ast.Module`.

Stage: ``str -> lark.Tree -> ast.Module``.  Syntax errors become
:class:`~mechdsl.errors.MechSyntaxError` with ``file:line:col``, the source
line, a caret and the expected tokens.
"""
from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from lark import Lark, Tree, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.exceptions import VisitError

from ..errors import Diagnostic, MechError, MechSyntaxError, did_you_mean
from ..span import Span
from . import ast
from .build import AstBuilder

RESERVED = (
    "ic ir budget feasibility constraint maximize minimize real nonnegative binary integer sum "
    "prod param set type population var def utility aux in init uniform multinomial and or not "
    "complements E"
).split()

_DECL_KEYWORDS = {"param", "set", "type", "population", "var", "def", "utility", "aux", "ic", "ir", "budget",
                  "feasibility", "constraint", "maximize", "minimize"}

_READABLE = {"NAME": "a name", "NUMBER": "a number", "CON_KIND": "a constraint kind (ic, ir, budget, feasibility, constraint)",
             "SENSE": "maximize/minimize", "DOMAIN": "a domain (real, nonnegative, binary, integer)",
             "ITER_OP": "sum/prod", "BOUND_OP": "'>=' or '<='", "COMP_OP": "a comparison",
             "$END": "end of file"}


def grammar_text() -> str:
    """Return the full grammar: the core plus every registered mechanism fragment."""
    from ..mechanisms import KINDS

    root = resources.files("mechdsl.grammar")
    parts = [root.joinpath("mech.lark").read_text(encoding="utf-8")]
    for kind in KINDS:
        if kind.grammar:
            parts.append(root.joinpath(kind.grammar).read_text(encoding="utf-8"))
    return "\n".join(parts)


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    try:  # Lark caches the compiled grammar in the temp directory, keyed by the grammar's hash
        return Lark(grammar_text(), parser="lalr", propagate_positions=True, maybe_placeholders=False, cache=True)
    except OSError:  # e.g. a read-only temp directory
        return Lark(grammar_text(), parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _describe(parser: Lark, names) -> list[str]:
    out = set()
    for name in names:
        if name in _READABLE:
            out.add(_READABLE[name])
            continue
        try:
            term = parser.get_terminal(name)
            out.add(f"'{term.pattern.value}'")
        except KeyError:
            out.add(name)
    return sorted(out)


@functools.lru_cache(maxsize=1)
def _builder_class():
    """The AST builder with every registered kind's rule callbacks added."""
    from lark import v_args

    from ..mechanisms import KINDS

    methods = {}
    for kind in KINDS:
        for rule, fn in kind.builders.items():
            methods[rule] = fn
    return v_args(meta=True)(type("Builder", (AstBuilder,), methods))


#: Deepest expression nesting accepted (one level per operator or call).  Every later stage walks
#: expressions recursively, and this bound keeps them all well inside Python's recursion limit.
MAX_NESTING = 150


def parse(text: str, filename: str = "<string>") -> ast.Module:
    """Parse ``text`` (the contents of ``filename``) into an AST module."""
    if text.startswith("\ufeff"):  # a UTF-8 byte-order mark (some editors write one)
        text = text[1:]
    parser = _parser()
    try:
        tree = parser.parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(parser, exc, text, filename) from None
    _check_nesting(tree, text, filename)
    try:
        return _builder_class()(filename, text).transform(tree)
    except VisitError as exc:  # errors raised inside builder callbacks
        if isinstance(exc.orig_exc, MechError):
            raise exc.orig_exc from None
        raise


def _check_nesting(tree: Tree, text: str, filename: str) -> None:
    """Refuse expressions nested deeper than :data:`MAX_NESTING` (iteratively: no recursion here)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            meta = node.meta
            line, col = (meta.line, meta.column) if not getattr(meta, "empty", True) else (1, 1)
            span = Span(filename, line, col, line, col + 1)
            raise MechSyntaxError(Diagnostic(
                f"expression nested too deeply (more than {MAX_NESTING} levels of operators or calls)", span,
                help="split it into named params or defs, or write a long sum as sum{...}"), {filename: text})
        for child in node.children:
            if isinstance(child, Tree):
                stack.append((child, depth + 1))


def parse_file(path: str | Path) -> ast.Module:
    """Read and parse a .mech file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise MechError(f"error: cannot read spec '{path}': {exc.strerror}") from None
    return parse(decode_source(raw, str(path)), str(path))


def decode_source(raw: bytes, filename: str) -> str:
    """UTF-8 text of a spec (a byte-order mark is skipped); any other encoding is a located error."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[:exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        shown = raw.decode("utf-8", errors="replace")
        span = Span(filename, line, col, line, col + 1)
        raise MechSyntaxError(Diagnostic(
            f"the spec is not UTF-8: byte 0x{raw[exc.start]:02X} at line {line}, column {col}", span,
            help="save the file as UTF-8"), {filename: shown}) from None
    if "\x00" in text:
        i = text.index("\x00")
        line = text.count("\n", 0, i) + 1
        col = i - (text.rfind("\n", 0, i) + 1) + 1
        raise MechSyntaxError(Diagnostic(f"the spec contains a NUL byte at line {line}, column {col}",
                                         Span(filename, line, col, line, col + 1)), {filename: text.replace("\x00", " ")})
    return text


def _expected_keywords(parser: Lark, names) -> set[str]:
    """The keywords among the expected terminals: literal words, and the words of CON_KIND, SENSE, ..."""
    words: set[str] = set()
    for name in names or ():
        try:
            pattern = parser.get_terminal(name).pattern
        except KeyError:
            continue
        if name == "NAME":
            continue
        value = pattern.value
        if pattern.type == "str":
            alternatives = [value]
        else:
            inner = value[3:-1] if value.startswith("(?:") and value.endswith(")") else value
            alternatives = inner.split("|")
        words.update(w for w in alternatives if w.isidentifier())
    return words


def _split_keyword(exc: UnexpectedToken, text: str):
    """``(word, keyword, start)`` when the token before the error is the tail of a word that starts with a
    keyword (the lexer reads `parameter` as `param` + `eter` where only a keyword can come), else None."""
    history = getattr(exc, "token_history", None) or []
    prev = history[-1] if history else None
    if prev is None or prev.type != "NAME" or not prev.start_pos:
        return None
    start = prev.start_pos
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    keyword = text[start:prev.start_pos]
    if not keyword or not keyword.isidentifier():
        return None
    return keyword + str(prev), keyword, start


def _syntax_error(parser: Lark, exc: UnexpectedInput, text: str, filename: str) -> MechSyntaxError:
    line = getattr(exc, "line", 0) or 0
    col = getattr(exc, "column", 0) or 0
    width = 1
    help_ = None
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            msg = "unexpected end of file"
            lines = text.splitlines() or [""]
            line, col = len(lines), len(lines[-1]) + 1
        else:
            msg = f"unexpected {repr(str(tok))}"
            width = max(1, len(str(tok)))
        expected = _describe(parser, exc.accepts or exc.expected)
        if tok.type != "$END" and str(tok) in RESERVED and "a name" in expected:
            help_ = f"'{tok}' is a reserved word of the .mech language; choose another name"
    elif isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        msg = f"unexpected character {ch!r}"
        expected = []
    elif isinstance(exc, UnexpectedEOF):
        msg = "unexpected end of file"
        expected = _describe(parser, exc.expected)
        lines = text.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
    else:  # pragma: no cover - lark has no other subclasses today
        msg, expected = str(exc), []
    notes = ()
    if expected:
        if len(expected) <= 12:
            notes = ("expected " + ", ".join(expected),)
        else:
            notes = ("expected one of " + ", ".join(expected[:12]) + ", ...",)
    if ("';'" in expected and help_ is None and isinstance(exc, UnexpectedToken)
            and str(exc.token) in _DECL_KEYWORDS):
        help_ = "is a ';' missing at the end of the previous declaration?"
    if help_ is None and isinstance(exc, UnexpectedToken) and str(exc.token).isidentifier():
        # A misspelt keyword (`maximise`, `parm`): the closest keyword the parser expected here.
        help_ = did_you_mean(str(exc.token), _expected_keywords(parser, exc.accepts or exc.expected))
    split = _split_keyword(exc, text) if isinstance(exc, UnexpectedToken) else None
    if split is not None:  # `parameter K`, `vars x`: lexed as the keyword and a name, so `K` looked wrong
        word, keyword, start = split
        line = text.count("\n", 0, start) + 1
        col = start - (text.rfind("\n", 0, start) + 1) + 1
        msg, width, notes = f"unexpected {word!r}", len(word), ()
        help_ = f"did you mean '{keyword}'? ('{word}' reads as '{keyword}' followed by '{word[len(keyword):]}')"
    span = Span(filename, line, col, line, col + width)
    return MechSyntaxError(Diagnostic(f"syntax error: {msg}", span, notes=notes, help=help_), {filename: text})
