"""A Pygments lexer for ``.mech`` specs.

Registered through the ``pygments.lexers`` entry point (``pyproject.toml``), so once mechdsl is
installed ``pygmentize -l mech spec.mech``, Sphinx / MkDocs code blocks tagged ``mech`` and
``pygments.lexers.get_lexer_by_name("mech")`` highlight specs.  The token classes follow
``grammar/mech.lark``: declaration keywords, constraint kinds, the objective sense, domains, the
iterated operators and quantifiers, built-in functions, operators and punctuation.  Anything the
grammar cannot contain comes out as an ``Error`` token (the test suite checks that no shipped spec
and no documented example produces one).
"""
from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, Whitespace

__all__ = ["MechLexer", "DECLARATIONS", "CONSTRAINT_KINDS", "BUILTINS", "KEYWORDS"]

#: Words that start a declaration (``truthful`` and ``stagewise`` are the mechanism kinds of grammar/mechanisms/).
DECLARATIONS = ("param", "set", "type", "population", "var", "def", "utility", "aux", "report", "tiebreak",
                "truthful", "stagewise")
#: Constraint kinds (and the ``check`` prefix: verified, not imposed).
CONSTRAINT_KINDS = ("ic", "ir", "budget", "feasibility", "constraint", "check")
SENSES = ("maximize", "minimize")
DOMAINS = ("real", "nonnegative", "binary", "integer")
#: Other keywords: conditionals, logic, set membership, attributes of declarations.
KEYWORDS = ("if", "then", "else", "in", "init", "uniform", "density", "multinomial", "over", "reserve", "value",
            "days", "payment", "margin", "inf", "sup", "grid")
OPERATOR_WORDS = ("and", "or", "not")
#: Iterated forms ``op{i in S} body`` and quantifiers.
ITERATED = ("sum", "prod", "max", "min", "argmax", "argmin", "forall", "exists")
#: Built-in functions (mechdsl/semantics/check.py BUILTINS) and forms written like calls.
BUILTINS = ("sqrt", "log", "exp", "abs", "floor", "ceil", "mod", "complements", "cdf", "pdf", "phi", "phibar", "iron")
#: Attributes of an auxiliary problem besides its variables.
AUX_ATTRIBUTES = ("objective", "feasible")

_NAME = r"[A-Za-z_][A-Za-z_0-9]*"


class MechLexer(RegexLexer):
    """Lexer for mechdsl ``.mech`` specs (mechanism and contract design models)."""

    name = "mechdsl"
    aliases = ["mech", "mechdsl"]
    filenames = ["*.mech"]
    mimetypes = ["text/x-mech"]
    url = "https://github.com/mechdsl/mechdsl"

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"(#|//).*?$", Comment.Single),
            # A declaration keyword and the name it declares.
            (r"\b(def|utility)(\s+)(" + _NAME + r")", bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (r"\b(aux)(\s+)(" + _NAME + r")", bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (r"\b(param|set|var|report|population)(\s+)(" + _NAME + r")",
             bygroups(Keyword.Declaration, Whitespace, Name.Variable)),
            (r"\b(type)(\s+)(" + _NAME + r")", bygroups(Keyword.Declaration, Whitespace, Name.Variable)),
            (r"\b((?:ic|ir|budget|feasibility|constraint))(\s+)(" + _NAME + r")(?=\s*[\[:])",
             bygroups(Keyword.Declaration, Whitespace, Name.Label)),
            (r"\b(maximize|minimize)(\s+)(" + _NAME + r")(\s*)(:)",
             bygroups(Keyword, Whitespace, Name.Label, Whitespace, Punctuation)),
            (words(DECLARATIONS, suffix=r"\b"), Keyword.Declaration),
            (words(CONSTRAINT_KINDS, suffix=r"\b"), Keyword.Declaration),
            (words(SENSES, suffix=r"\b"), Keyword),
            (words(DOMAINS, suffix=r"\b"), Keyword.Type),
            (words(OPERATOR_WORDS, suffix=r"\b"), Operator.Word),
            (words(KEYWORDS, suffix=r"\b"), Keyword),
            (words(ITERATED, suffix=r"\b(?=\s*[{(])"), Name.Builtin),
            (words(BUILTINS, suffix=r"\b(?=\s*\()"), Name.Builtin),
            # The expectation operator: E[x](...), E[n | cond](...), E[v[-i]](...).
            (r"\bE\b(?=\s*\[)", Name.Builtin),
            (r"(\.)(" + "|".join(AUX_ATTRIBUTES) + r")\b", bygroups(Punctuation, Name.Attribute)),
            (r"(\.)(" + _NAME + r")", bygroups(Punctuation, Name.Attribute)),
            (r"\d+\.\d+([eE][+-]?\d+)?|\d+[eE][+-]?\d+", Number.Float),
            (r"\d+", Number.Integer),
            (_NAME, Name),
            (r"->|\.\.|==|!=|<=|>=|[<>=+\-*/^~|]", Operator),
            (r"[\[\](){},;:]", Punctuation),
            (r"\.(?=\s*[\],])", Punctuation),  # the outcome slot of E[s ~ F[j, .]]
        ],
    }

    def analyse_text(text):  # noqa: N805 - Pygments calls it as a static method
        """A guess for ``pygments.lexers.guess_lexer``: typical mechdsl declarations."""
        score = 0.0
        for marker in ("utility ", "ic ", "ir ", "param ", "maximize ", "minimize ", "E["):
            if marker in text:
                score += 0.1
        return min(score, 0.9)

