"""Parser tests: every construct of grammar/mech.lark parses to the right AST,
operator precedence is right, every shipped spec parses, and syntax errors are
located at the exact line and column with a rendered ``file:line:col`` and caret.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import mechdsl
from mechdsl.syntax import ast, parse

SPECS = Path(__file__).resolve().parents[1] / "specs"


def items(text: str):
    return parse(text, "t.mech").items


def one(text: str):
    its = items(text)
    assert len(its) == 1, its
    return its[0]


def num(e, value):
    assert isinstance(e, ast.Num), e
    assert e.value == value


def name(e, ident):
    assert isinstance(e, ast.Name), e
    assert e.id == ident


# ------------------------------------------------------------------- params
def test_scalar_param_with_default():
    d = one("param alpha = 4;")
    assert isinstance(d, ast.ParamDecl)
    assert d.name == "alpha" and d.index is None and d.domain is None and d.bounds == ()
    num(d.value, 4.0)
    assert (d.span.line, d.span.column) == (1, 1)


def test_scalar_param_without_default():
    d = one("param D;")
    assert isinstance(d, ast.ParamDecl) and d.name == "D" and d.value is None


def test_param_domain_and_bounds():
    d = one("param K integer >= 1, <= 10 = 3;")
    assert d.domain == "integer"
    assert [op for op, _ in d.bounds] == [">=", "<="]
    num(d.bounds[0][1], 1.0)
    num(d.bounds[1][1], 10.0)
    num(d.value, 3.0)
    d = one("param k > 0 = 1;")
    assert d.domain is None and [op for op, _ in d.bounds] == [">"]
    d = one("param w nonnegative = 1.5e0;")
    assert d.domain == "nonnegative" and d.bounds == ()
    num(d.value, 1.5)
    d = one("param b binary < 2 = 1;")
    assert d.domain == "binary" and d.bounds[0][0] == "<"


def test_indexed_param_with_inline_array():
    d = one("param c[k in 1..K] > 0 = [0.2, 0.1, 0.05];")
    assert isinstance(d.index, ast.IndexSpec)
    (item,) = d.index.items
    assert item.binders == ("k",)
    assert isinstance(item.set, ast.RangeSet)
    num(item.set.lo, 1.0)
    name(item.set.hi, "K")  # range with a param bound
    assert d.index.condition is None
    assert isinstance(d.value, ast.ArrayLit)
    assert [e.value for e in d.value.elements] == [0.2, 0.1, 0.05]


def test_indexed_param_with_nested_array_and_trailing_comma():
    d = one("param lam[i in 1..n, k in 1..K] >= 0, <= 1 = [[0.5, 0.3, 0.2],\n [0.2, 0.3, -0.5],];")
    assert [it.binders for it in d.index.items] == [("i",), ("k",)]
    assert isinstance(d.value, ast.ArrayLit) and len(d.value.elements) == 2
    row0, row1 = d.value.elements
    assert isinstance(row0, ast.ArrayLit) and isinstance(row1, ast.ArrayLit)
    assert [e.value for e in row0.elements] == [0.5, 0.3, 0.2]
    assert isinstance(row1.elements[2], ast.Neg)  # negative entries are expressions
    num(row1.elements[2].operand, 0.5)
    assert row1.span.line == 2


def test_indexed_param_with_expression_default_and_filter():
    d = one("param q[k in S: k != 2] = sum{i in 1..n} lam[i,k] / n;")
    assert isinstance(d.index.condition, ast.Compare) and d.index.condition.ops == ("!=",)
    assert isinstance(d.value, ast.Iterate) and d.value.op == "sum"
    body = d.value.body
    assert isinstance(body, ast.BinOp) and body.op == "/"
    assert isinstance(body.left, ast.Indexed) and body.left.base == "lam"
    assert [a.id for a in body.left.args] == ["i", "k"]


def test_anonymous_index_item():
    d = one("param c[S] = [1, 2];")
    (item,) = d.index.items
    assert item.binders == () and isinstance(item.set, ast.NamedSet) and item.set.name == "S"


# --------------------------------------------------------------------- sets
def test_set_range_with_param_bounds():
    d = one("set S = lo..K;")
    assert isinstance(d, ast.SetDecl) and d.name == "S"
    assert isinstance(d.value, ast.RangeSet)
    name(d.value.lo, "lo")
    name(d.value.hi, "K")


def test_set_list():
    d = one("set L = {1, 3, 5};")
    assert isinstance(d.value, ast.ListSet)
    assert [e.value for e in d.value.elements] == [1.0, 3.0, 5.0]
    d = one("set E0 = {};")
    assert isinstance(d.value, ast.ListSet) and d.value.elements == ()


def test_set_product_is_flattened():
    d = one("set P = S * L * 1..2;")
    assert isinstance(d.value, ast.ProductSet)
    f = d.value.factors
    assert len(f) == 3
    assert isinstance(f[0], ast.NamedSet) and f[0].name == "S"
    assert isinstance(f[1], ast.NamedSet) and f[1].name == "L"
    assert isinstance(f[2], ast.RangeSet)


def test_filtered_set_with_tuple_binder():
    d = one("set F = {(a, b) in S * S: a < b};")
    assert isinstance(d.value, ast.FilteredSet)
    assert d.value.binders == ("a", "b")
    assert isinstance(d.value.base, ast.ProductSet)
    assert isinstance(d.value.condition, ast.Compare)
    name(d.value.condition.operands[0], "a")
    assert d.value.condition.ops == ("<",)


def test_filtered_set_with_single_binder():
    d = one("set G = {k in 1..5: k >= 2};")
    assert isinstance(d.value, ast.FilteredSet) and d.value.binders == ("k",)
    assert isinstance(d.value.base, ast.RangeSet)


def test_tuple_binder_in_index():
    d = one("var x[(a, b) in {1, 2} * {3, 4}];")
    (item,) = d.index.items
    assert item.binders == ("a", "b")
    assert isinstance(item.set, ast.ProductSet)
    assert all(isinstance(f, ast.ListSet) for f in item.set.factors)


# -------------------------------------------------------- types, populations
def test_type_uniform():
    d = one("type th in 1..K ~ uniform;")
    assert isinstance(d, ast.TypeDecl) and d.name == "th"
    assert isinstance(d.set, ast.RangeSet)
    assert d.prior is None


def test_type_table_prior():
    text = "type theta in S ~ q;"
    d = one(text)
    assert d.prior == "q" and isinstance(d.set, ast.NamedSet)
    col = text.index("q;") + 1
    assert (d.prior_span.line, d.prior_span.column, d.prior_span.end_column) == (1, col, col + 1)


def test_type_over_product_set():
    d = one("type pair in S * L ~ uniform;")
    assert isinstance(d.set, ast.ProductSet) and len(d.set.factors) == 2 and d.prior is None


def test_population_multinomial():
    text = "population n ~ multinomial(N, theta);"
    d = one(text)
    assert isinstance(d, ast.PopulationDecl)
    assert d.name == "n" and d.source == "theta"
    name(d.count, "N")
    assert d.source_span.column == text.index("theta") + 1
    d = one("population m ~ multinomial(2 * N, p);")
    assert isinstance(d.count, ast.BinOp) and d.count.op == "*" and d.source == "p"


# --------------------------------------------------------------------- vars
def test_var_plain_and_domains():
    d = one("var x;")
    assert isinstance(d, ast.VarDecl)
    assert d.name == "x" and d.index is None and d.domain == "real" and d.bounds == () and d.init is None
    assert one("var b[k in S] binary;").domain == "binary"
    assert one("var z integer;").domain == "integer"
    assert one("var y nonnegative;").domain == "nonnegative"


def test_var_bounds_and_init():
    d = one("var m[i in 1..I] >= 0, <= 1e6, init = m_alone[i];")
    assert [op for op, _ in d.bounds] == [">=", "<="]
    num(d.bounds[0][1], 0.0)
    num(d.bounds[1][1], 1e6)
    assert isinstance(d.init, ast.Indexed) and d.init.base == "m_alone"
    name(d.init.args[0], "i")


# ---------------------------------------------------------- defs, utilities
def test_def_with_params_and_without():
    d = one("def a(m) = max(0, a_opt - sqrt(m));")
    assert isinstance(d, ast.DefDecl) and d.name == "a" and d.params == ("m",) and not d.utility
    assert isinstance(d.body, ast.Call) and d.body.func == "max" and len(d.body.args) == 2
    d = one("def g() = 2;")
    assert d.params == () and not d.utility
    num(d.body, 2.0)
    d = one("def f(a1, a2, a3) = a1 * a2 + a3;")
    assert d.params == ("a1", "a2", "a3")


def test_utility():
    d = one("utility U(t, r) = p[r] - v[t] * x[r];")
    assert isinstance(d, ast.DefDecl) and d.utility
    assert d.name == "U" and d.params == ("t", "r")
    assert isinstance(d.body, ast.BinOp) and d.body.op == "-"
    assert isinstance(d.body.right, ast.BinOp) and d.body.right.op == "*"


# -------------------------------------------------------------- constraints
@pytest.mark.parametrize("kind", ["ic", "ir", "budget", "feasibility", "constraint"])
def test_constraint_kinds(kind):
    d = one(f"{kind} C1[t in 1..K, r in 1..K: t != r]: U(t, t) >= U(t, r);")
    assert isinstance(d, ast.ConstraintDecl)
    assert d.kind == kind and d.name == "C1"
    assert [it.binders for it in d.index.items] == [("t",), ("r",)]
    assert isinstance(d.index.condition, ast.Compare) and d.index.condition.ops == ("!=",)
    assert isinstance(d.body, ast.Compare) and d.body.ops == (">=",)
    assert all(isinstance(o, ast.Call) and o.func == "U" for o in d.body.operands)


def test_unindexed_constraint():
    d = one("budget B: sum{k in S: k >= 2} x[k] <= 10;")
    assert d.index is None and d.kind == "budget"
    lhs = d.body.operands[0]
    assert isinstance(lhs, ast.Iterate)
    assert isinstance(lhs.index.condition, ast.Compare)


def test_comparison_chain():
    d = one("constraint C: 0 <= x <= 1;")
    assert isinstance(d.body, ast.Compare)
    assert d.body.ops == ("<=", "<=") and len(d.body.operands) == 3


def test_implication_with_variable_premise():
    d = one("constraint Imp[k in S]: b[k] >= 1 -> x[k] <= 5;")
    assert isinstance(d.body, ast.Implies)
    prem, concl = d.body.premise, d.body.conclusion
    assert isinstance(prem, ast.Compare) and isinstance(prem.operands[0], ast.Indexed)
    assert prem.operands[0].base == "b"
    assert isinstance(concl, ast.Compare) and concl.ops == ("<=",)


def test_implication_is_right_associative():
    d = one("constraint C: x >= 1 -> y >= 1 -> z >= 1;")
    assert isinstance(d.body, ast.Implies)
    assert isinstance(d.body.premise, ast.Compare)
    assert isinstance(d.body.conclusion, ast.Implies)


def test_disjunction_and_precedence_of_boolean_operators():
    d = one("constraint Dis: x[1] <= 1 or x[1] >= 2 or x[1] >= 7;")
    assert isinstance(d.body, ast.BoolOp) and d.body.op == "or"
    assert len(d.body.operands) == 3  # flattened
    d = one("constraint C: not x >= 1 and x <= 2 or x >= 5;")
    b = d.body
    assert isinstance(b, ast.BoolOp) and b.op == "or"
    left = b.operands[0]
    assert isinstance(left, ast.BoolOp) and left.op == "and"
    assert isinstance(left.operands[0], ast.Not)
    assert isinstance(left.operands[0].operand, ast.Compare)


def test_complements():
    d = one("constraint Comp[k in S]: complements(x[k], 10 - x[k]);")
    assert isinstance(d.body, ast.Complements)
    assert isinstance(d.body.left, ast.Indexed) and d.body.left.base == "x"
    assert isinstance(d.body.right, ast.BinOp) and d.body.right.op == "-"


# --------------------------------------------------------------- objectives
def test_objective_with_and_without_name():
    d = one("maximize Utility: x + 1;")
    assert isinstance(d, ast.ObjectiveDecl) and d.sense == "maximize" and d.name == "Utility"
    assert isinstance(d.expr, ast.BinOp)
    d = one("minimize x;")
    assert d.sense == "minimize" and d.name is None
    name(d.expr, "x")


# --------------------------------------------------------------------- aux
def test_aux_block_and_attribute_access():
    its = items("aux alone[i in 1..I] {\n"
                "    var ma >= 0, <= 1e6, init = 1000;\n"
                "    def h(z) = z;\n"
                "    constraint Lim: ma <= 5;\n"
                "    maximize v(a(ma)) - c[i] * ma;\n"
                "}\n"
                "param m_alone[i in 1..I] = alone[i].ma;\n"
                "param f = alone[1].objective;\n")
    aux, pm, pf = its
    assert isinstance(aux, ast.AuxDecl) and aux.name == "alone"
    assert aux.index.items[0].binders == ("i",)
    kinds = [type(it) for it in aux.items]
    assert kinds == [ast.VarDecl, ast.DefDecl, ast.ConstraintDecl, ast.ObjectiveDecl]
    assert aux.items[0].name == "ma"
    assert (aux.span.line, aux.span.end_line) == (1, 6)
    attr = pm.value
    assert isinstance(attr, ast.Attribute) and attr.attr == "ma"
    assert isinstance(attr.target, ast.Indexed) and attr.target.base == "alone"
    name(attr.target.args[0], "i")
    assert isinstance(pf.value, ast.Attribute) and pf.value.attr == "objective"


def test_scalar_aux_without_index():
    (aux,) = items("aux A { var y <= 1; maximize y; }")
    assert isinstance(aux, ast.AuxDecl) and aux.index is None and len(aux.items) == 2


# -------------------------------------------------------- sums, products, E
def test_sum_and_prod_with_filters():
    d = one("maximize prod{k in S: k < 3} x[k] + sum{i in 1..n, k in 1..K: i != k} lam[i,k];")
    plus = d.expr
    assert isinstance(plus, ast.BinOp) and plus.op == "+"
    pr, sm = plus.left, plus.right
    assert isinstance(pr, ast.Iterate) and pr.op == "prod"
    assert pr.index.items[0].binders == ("k",)
    assert isinstance(pr.index.condition, ast.Compare) and pr.index.condition.ops == ("<",)
    assert isinstance(sm, ast.Iterate) and sm.op == "sum"
    assert [it.binders for it in sm.index.items] == [("i",), ("k",)]
    assert sm.index.condition.ops == ("!=",)
    assert isinstance(sm.body, ast.Indexed) and sm.body.base == "lam"


def test_expectation_plain():
    text = "maximize Accuracy: E[n](a(sum{j in 1..I} n[j] * m[j]));"
    d = one(text)
    e = d.expr
    assert isinstance(e, ast.Expect) and e.subject == "n" and e.condition is None
    assert (e.span.line, e.span.column) == (1, text.index("E[") + 1)
    assert (e.subject_span.line, e.subject_span.column) == (1, text.index("E[") + 3)
    assert isinstance(e.body, ast.Call) and e.body.func == "a"
    s = e.body.args[0]
    assert isinstance(s, ast.Iterate) and isinstance(s.body, ast.BinOp) and s.body.op == "*"


def test_expectation_conditional():
    d = one("budget B[i in 1..I]: t[i] <= E[n | n[i] >= 1](v(x));")
    e = d.body.operands[1]
    assert isinstance(e, ast.Expect) and e.subject == "n"
    c = e.condition
    assert isinstance(c, ast.Compare) and c.ops == (">=",)
    assert isinstance(c.operands[0], ast.Indexed) and c.operands[0].base == "n"
    num(c.operands[1], 1.0)
    assert isinstance(e.body, ast.Call) and e.body.func == "v"


# ---------------------------------------------------------------- precedence
def test_unary_minus_binds_looser_than_power():
    d = one("maximize -x^2;")
    e = d.expr
    assert isinstance(e, ast.Neg)
    assert isinstance(e.operand, ast.BinOp) and e.operand.op == "^"
    name(e.operand.left, "x")
    num(e.operand.right, 2.0)


def test_sum_body_is_a_term():
    d = one("maximize 2*sum{i in S} x[i]*y[i] + 1;")
    e = d.expr
    assert isinstance(e, ast.BinOp) and e.op == "+"
    num(e.right, 1.0)
    mul = e.left
    assert isinstance(mul, ast.BinOp) and mul.op == "*"
    num(mul.left, 2.0)
    s = mul.right
    assert isinstance(s, ast.Iterate) and s.op == "sum"
    assert isinstance(s.body, ast.BinOp) and s.body.op == "*"
    assert s.body.left.base == "x" and s.body.right.base == "y"


def test_power_is_right_associative_and_takes_signed_exponent():
    e = one("maximize 2^3^2;").expr
    assert e.op == "^"
    num(e.left, 2.0)
    assert isinstance(e.right, ast.BinOp) and e.right.op == "^"
    e = one("maximize x^-1;").expr
    assert e.op == "^" and isinstance(e.right, ast.Neg)


def test_left_associativity_of_minus_and_divide():
    e = one("maximize a - b - c;").expr
    assert e.op == "-" and isinstance(e.left, ast.BinOp) and e.left.op == "-"
    name(e.right, "c")
    e = one("maximize a / b * c;").expr
    assert e.op == "*" and e.left.op == "/"


def test_precedence_is_honoured_when_evaluated():
    """The parse drives evaluation: independent Python arithmetic gives the same numbers."""
    m = mechdsl.loads("param a = -2^2;\n"
                      "param b = 2*sum{i in 1..3} i*i + 1;\n"
                      "param c = 2^3^2;\n"
                      "param d = 10 - 4 - 3;\n"
                      "param e = 12 / 2 / 3;\n"
                      "param f = prod{i in 1..5: i != 3} i;\n"
                      "param g = -3 + 2 * 4 ^ 0.5;\n", "t.mech")
    p = m.instance().params
    assert p["a"] == -(2 ** 2)
    assert p["b"] == 2 * sum(i * i for i in range(1, 4)) + 1
    assert p["c"] == 2 ** (3 ** 2)
    assert p["d"] == (10 - 4) - 3
    assert p["e"] == (12 / 2) / 3
    assert p["f"] == 1 * 2 * 4 * 5
    assert p["g"] == pytest.approx(-3 + 2 * 4 ** 0.5)


# ------------------------------------------------------------------ comments
def test_comments_hash_and_slashes():
    its = items("# leading comment\n"
                "// another one\n"
                "param a = 1; # trailing hash\n"
                "param b = 2; // trailing slashes # with a hash\n"
                "// param c = 3;\n"
                "# param d = 4;\n")
    assert [d.name for d in its] == ["a", "b"]
    assert its[1].span.line == 4


def test_empty_and_comment_only_files():
    assert items("") == ()
    assert items("# nothing here\n// nor here\n") == ()


def test_names_that_start_with_reserved_words_are_names():
    its = items("param Emax = 1; param icon = 2; param inner = 3; param E_1 = 4; param sum2 = 5;")
    assert [d.name for d in its] == ["Emax", "icon", "inner", "E_1", "sum2"]


# ------------------------------------------------------------- shipped specs
SPEC_FILES = sorted(SPECS.glob("*.mech"))


def test_there_are_specs():
    assert len(SPEC_FILES) >= 2


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.name)
def test_every_spec_parses(path):
    from mechdsl.syntax import parse_file

    mod = parse_file(path)
    assert isinstance(mod, ast.Module)
    assert len(mod.items) > 0
    # every spec has a main problem, or only reports (evaluated, no optimisation)
    assert any(isinstance(d, (ast.ObjectiveDecl, ast.ReportDecl)) for d in mod.items)
    assert all(d.span.file == str(path) for d in mod.items)


# -------------------------------------------------------------- syntax errors
def syntax_error(text: str, filename: str = "t.mech") -> mechdsl.MechSyntaxError:
    with pytest.raises(mechdsl.MechSyntaxError) as info:
        parse(text, filename)
    err = info.value
    assert isinstance(err, mechdsl.MechError) and err.exit_code == 2
    return err


def assert_rendered(err, text, filename, line, col):
    """str(err) has 'file:line:col', the offending source line and a caret under ``col``."""
    out = str(err)
    assert f"{filename}:{line}:{col}" in out
    lines = out.splitlines()
    src = text.splitlines()[line - 1]
    gutter_idx = next(i for i, ln in enumerate(lines) if ln.endswith("| " + src) or ln.endswith("|" + src))
    gutter_line = lines[gutter_idx]
    gutter_len = len(gutter_line) - len(src)
    caret = lines[gutter_idx + 1]
    assert set(caret.strip()) == {"^"}
    assert caret.index("^") == gutter_len + col - 1


def test_missing_semicolon():
    text = "param a = 1;\nvar x\nvar y;\nmaximize x;\n"
    err = syntax_error(text)
    sp = err.diagnostic.span
    # The error is found at the next declaration keyword.
    assert (sp.file, sp.line, sp.column, sp.end_column) == ("t.mech", 3, 1, 4)
    assert "unexpected 'var'" in err.diagnostic.message
    assert "';'" in " ".join(err.diagnostic.notes)
    assert "';' missing" in err.diagnostic.help
    assert_rendered(err, text, "t.mech", 3, 1)


def test_missing_semicolon_at_end_of_file():
    text = "var x;\nmaximize x"
    err = syntax_error(text)
    sp = err.diagnostic.span
    assert (sp.line, sp.column) == (2, 11)
    assert "end of file" in err.diagnostic.message
    assert "';'" in " ".join(err.diagnostic.notes)
    assert "t.mech:2:11" in str(err)


def test_unexpected_character():
    text = "param a = 1;\n  param b = 2 ? 3;\n"
    err = syntax_error(text, "u.mech")
    sp = err.diagnostic.span
    assert (sp.file, sp.line, sp.column) == ("u.mech", 2, 15)
    assert "unexpected character '?'" in err.diagnostic.message
    assert_rendered(err, text, "u.mech", 2, 15)


def test_unbalanced_parenthesis_at_eof():
    text = "var x;\nmaximize (x + 1\n"
    err = syntax_error(text)
    sp = err.diagnostic.span
    assert (sp.line, sp.column) == (2, 16)  # just after the last character of the last line
    assert "unexpected end of file" in err.diagnostic.message
    assert "')'" in " ".join(err.diagnostic.notes)
    assert_rendered(err, text, "t.mech", 2, 16)


def test_unbalanced_parenthesis_before_semicolon():
    text = "param a = (1 + 2;"
    err = syntax_error(text)
    sp = err.diagnostic.span
    assert (sp.line, sp.column) == (1, 17)
    assert "unexpected ';'" in err.diagnostic.message
    assert "')'" in " ".join(err.diagnostic.notes)
    assert_rendered(err, text, "t.mech", 1, 17)


def test_extra_closing_parenthesis():
    err = syntax_error("var x;\nmaximize (x + 1)) ;")
    assert (err.diagnostic.span.line, err.diagnostic.span.column) == (2, 17)
    assert "unexpected ')'" in err.diagnostic.message


@pytest.mark.parametrize("text, col, word", [
    ("param E = 1;", 7, "E"),
    ("param ic = 1;", 7, "ic"),
    ("param real = 1;", 7, "real"),
    ("var sum;", 5, "sum"),
    ("set in = 1..2;", 5, "in"),
    ("def f(E) = 1;", 7, "E"),
])
def test_reserved_word_as_name(text, col, word):
    src = "param ok = 1;\n" + text + "\n"
    err = syntax_error(src)
    sp = err.diagnostic.span
    assert (sp.line, sp.column, sp.end_column) == (2, col, col + len(word))
    assert f"unexpected '{word}'" in err.diagnostic.message
    assert "reserved word" in err.diagnostic.help and f"'{word}'" in err.diagnostic.help
    assert_rendered(err, src, "t.mech", 2, col)
    assert "reserved word" in str(err)


def test_syntax_error_from_load_names_the_file(tmp_path):
    p = tmp_path / "bad.mech"
    p.write_text("param a = 1;\nparam b = 2 @ 3;\n", encoding="utf-8")
    with pytest.raises(mechdsl.MechSyntaxError) as info:
        mechdsl.load(p)
    sp = info.value.diagnostic.span
    assert (sp.file, sp.line, sp.column) == (str(p), 2, 13)
    assert f"{p}:2:13" in str(info.value)
