"""Mechanism kind ``stagewise``: a menu of rentals with per-day payments and stagewise IR (paper 003).

``stagewise M[k in S] value VAL days D payment PAY margin DELTA;`` offers each valuation type k in S an
option: a number of consecutive days l in 0..D (binary ``M_x[k, l]``, one per type) and a payment for each
day (``M_pay[k, d]``, 0 after the rental ends).  With ``def``s ``M_value(k)`` (the type's per-day value),
``M_days(k)``, ``M_total(k)`` and ``M_paid(k, d)`` (the payments of days 1..d), it desugars to:

* **stagewise IR** (PAY = 1, the default; 2): every day's cumulative utility d*VAL - M_paid(k, d) >= 0;
* **fixed rate** (PAY = 2): the same payment on every rented day;
* **overall IR** (PAY = 3): only VAL * M_days(k) - M_total(k) >= 0, and no filter;
* **the filter**: type j can place option k iff j's valuation is at least the option's filter
  max_d M_paid(k, d)/d.  A binary ``M_out[j, k]`` says j cannot, witnessed by a day d with
  M_paid(k, d) >= d*VAL(j) + DELTA (binary ``M_day[j, k, d]``).  DELTA = 0 (the default) gives the
  supremum of the strict filter; DELTA > 0 a margin;
* **data checks**: ``payment`` must be 1, 2 or 3 and ``margin`` nonnegative (data-only rows: a violation is
  an error at the declaration);
* **truthfulness among affordable bids**: type j prefers its own option to every option k it can place
  (big-M off exactly where ``M_out[j, k] = 1``).  Ties go to the designer (weak inequalities).

Days after d = l(k) are unpaid, so "for every d <= l(k)" is written "for every d in 1..D": past l(k) the
cumulative payment stays fixed while d*VAL grows.  The designer's objective is written in the spec with
these names, so the kind serves any reward and any continuation value.
"""
from __future__ import annotations

from ..syntax import ast
from . import MechanismKind
from .template import expand

TEMPLATE = """
constraint {N}_payment_is_1_2_or_3: (__PAY__ - 1) * (__PAY__ - 2) * (__PAY__ - 3) == 0;
constraint {N}_margin_is_nonnegative: __MARGIN__ >= 0;
var {N}_x[{B} in __S__, _sw_l in 0..__DAYS__] binary;
var {N}_pay[{B} in __S__, _sw_d in 1..__DAYS__] >= 0;
def {N}_value({B}) = __VAL__;
def {N}_days({B}) = sum{{_sw_l in 0..__DAYS__}} _sw_l * {N}_x[{B}, _sw_l];
def {N}_total({B}) = sum{{_sw_d in 1..__DAYS__}} {N}_pay[{B}, _sw_d];
def {N}_paid({B}, _sw_d) = sum{{_sw_e in 1.._sw_d}} {N}_pay[{B}, _sw_e];
constraint {N}_one[{B} in __S__]: sum{{_sw_l in 0..__DAYS__}} {N}_x[{B}, _sw_l] == 1;
constraint {N}_rented[{B} in __S__, _sw_d in 1..__DAYS__]:
    {N}_pay[{B}, _sw_d] <= __DAYS__ * {N}_value({B}) * sum{{_sw_l in _sw_d..__DAYS__}} {N}_x[{B}, _sw_l];
ir {N}_IR[{B} in __S__, _sw_d in 1..__DAYS__: __PAY__ != 3]: _sw_d * {N}_value({B}) - {N}_paid({B}, _sw_d) >= 0;
ir {N}_IR_total[{B} in __S__: __PAY__ == 3]: {N}_value({B}) * {N}_days({B}) - {N}_total({B}) >= 0;
constraint {N}_rate_up[{B} in __S__, _sw_d in 2..__DAYS__: __PAY__ == 2]:
    {N}_pay[{B}, _sw_d] - {N}_pay[{B}, 1] <= __DAYS__ * {N}_value({B}) * (1 - sum{{_sw_l in _sw_d..__DAYS__}} {N}_x[{B}, _sw_l]);
constraint {N}_rate_down[{B} in __S__, _sw_d in 2..__DAYS__: __PAY__ == 2]:
    {N}_pay[{B}, 1] - {N}_pay[{B}, _sw_d] <= __DAYS__ * {N}_value({B}) * (1 - sum{{_sw_l in _sw_d..__DAYS__}} {N}_x[{B}, _sw_l]);
var {N}_out[_sw_j in __S__, {B} in __S__] binary;
var {N}_day[_sw_j in __S__, {B} in __S__, _sw_d in 1..__DAYS__] binary;
constraint {N}_IC[_sw_j in __S__, {B} in __S__: _sw_j != {B}]:
    {N}_value(_sw_j) * {N}_days(_sw_j) - {N}_total(_sw_j)
        >= {N}_value(_sw_j) * {N}_days({B}) - {N}_total({B}) - __DAYS__ * {N}_value(_sw_j) * {N}_out[_sw_j, {B}];
constraint {N}_witness[_sw_j in __S__, {B} in __S__: _sw_j != {B}]:
    sum{{_sw_d in 1..__DAYS__}} {N}_day[_sw_j, {B}, _sw_d] >= {N}_out[_sw_j, {B}];
constraint {N}_filter[_sw_j in __S__, {B} in __S__, _sw_d in 1..__DAYS__: _sw_j != {B}]:
    {N}_paid({B}, _sw_d) >= (_sw_d * {N}_value(_sw_j) + __MARGIN__) * {N}_day[_sw_j, {B}, _sw_d];
constraint {N}_unfiltered[_sw_j in __S__, {B} in __S__: __PAY__ == 3 or _sw_j == {B}]: {N}_out[_sw_j, {B}] == 0;
"""


def build_stagewise_decl(builder, meta, children):
    """Lark rule ``stagewise_decl`` -> the core declarations of the menu (see the module docstring)."""
    name, binder, set_expr, value, days, *opts = children
    span = builder._span(meta)
    pay = next((e for tag, e in opts if tag == "payment"), ast.Num(span, 1.0))
    margin = next((e for tag, e in opts if tag == "margin"), ast.Num(span, 0.0))
    text = TEMPLATE.format(N=str(name), B=str(binder))
    return expand(text, span, S=set_expr, VAL=value, DAYS=days, PAY=pay, MARGIN=margin)


def build_stagewise_payment(builder, meta, children):
    return ("payment", children[0])


def build_stagewise_margin(builder, meta, children):
    return ("margin", children[0])


#: A spec using the kind; tests/test_registry.py solves and verifies it.  Two days, types 1 < 2 < 3:
#: consumer surplus with a continuation value of 0.
EXAMPLE = """
param val[k in 1..3] = [1, 2, 3];
param q[k in 1..3] = [0.3, 0.4, 0.3];
type v in 1..3 ~ q;
stagewise menu[k in 1..3] value val[k] days 2;
maximize E[v](menu_value(v) * menu_days(v) - menu_total(v));
"""

SPEC = MechanismKind(
    name="stagewise",
    grammar="mechanisms/stagewise.lark",
    builders={"stagewise_decl": build_stagewise_decl, "stagewise_payment": build_stagewise_payment,
              "stagewise_margin": build_stagewise_margin},
    doc="A menu of rentals (days, per-day payments) with stagewise IR, the affordability filter and "
        "truthfulness among affordable bids; fixed-rate and overall-IR variants by a param.",
    example=EXAMPLE,
)
