"""Continuous one-dimensional priors: expectations, cdf / pdf / virtual values, ironing, infima.

Stage: data binding and evaluation (used by :mod:`mechdsl.evaluate` and :mod:`mechdsl.instance`).  Every
routine takes *vectorised* callables ``f(xs) -> array`` (xs a numpy array of points of the support), so
that one horizon of a 10^4-step recurrence costs a few numpy calls, not thousands of interpreted ones.

Accuracy, as documented in docs/language.md:

* **Expectations** ``E[v](body)``: the support is cut at every point where a comparison in the body (an
  ``if`` condition) changes its truth value, each located to machine precision; each piece is integrated by
  Gauss--Legendre with ``GL_N`` nodes, so a piecewise polynomial of degree < 2 GL_N is integrated exactly
  (up to rounding).  A piece where halving changes the value by more than ``QUAD_TOL`` (relative) is
  halved again (adaptive quadrature); the accumulated estimate of the error is returned with the value.
* **inf{v in [a, b]: cond}**: the first point of a ``INF_GRID`` grid where cond holds, then repeated
  64-section of the bracket down to rounding.  A comparison in cond holds within a relative ``CMP_TOL``
  (rounding).  The empty set gives b (``sup``: a).
* **Ironing** ``iron(v, g)``: H(q) = integral of g(F^-1) over [0, q] on ``IRON_CELLS`` quantile cells
  (each cell by Gauss--Legendre); the convex hull of H; on each interval where the hull lies strictly
  below H the ironed value is the hull's slope, elsewhere g itself.  Ironing intervals are resolved to a
  cell, 1/IRON_CELLS in quantile.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

GL_N = 10
_GL_X, _GL_W = np.polynomial.legendre.leggauss(GL_N)
QUAD_TOL = 1e-12
QUAD_MAX_PANELS = 20_000
INF_GRID = 257
CMP_TOL = 1e-12
IRON_CELLS = 1024
_DENSITY_CELLS = 4096

Vec = Callable[[np.ndarray], np.ndarray]


class PriorError(ValueError):
    """Bad data for a continuous prior (an empty interval, a negative density, a mass that is not 1)."""


def _full(f: Vec, x: np.ndarray) -> np.ndarray:
    a = f(x)
    if isinstance(a, np.ndarray) and a.shape == x.shape and a.dtype == float:
        return a
    return np.broadcast_to(np.asarray(a, dtype=float), x.shape)


def _nodes(lo: np.ndarray, hi: np.ndarray):
    half = (hi - lo) / 2
    mid = (hi + lo) / 2
    return mid[:, None] + half[:, None] * _GL_X, half[:, None] * _GL_W


def integrate(f: Vec, breaks) -> tuple[float, float]:
    """The integral of f over [breaks[0], breaks[-1]], and an estimate of its error.

    Exact (to rounding) for a polynomial of degree < 2 GL_N between consecutive breaks; elsewhere the
    panels are halved until halving changes a panel by at most its share of QUAD_TOL."""
    b = np.unique(np.asarray(breaks, dtype=float))
    lo, hi = b[:-1], b[1:]
    if not len(lo):
        return 0.0, 0.0
    width = b[-1] - b[0]
    x, w = _nodes(lo, hi)
    whole = (_full(f, x) * w).sum(axis=1)
    scale = max(1.0, float(np.abs(whole).sum()))
    total, err = 0.0, 0.0
    while len(lo):
        mid = (lo + hi) / 2
        xl, wl = _nodes(lo, mid)
        xr, wr = _nodes(mid, hi)
        vals = _full(f, np.concatenate([xl, xr]))
        left = (vals[:len(lo)] * wl).sum(axis=1)
        right = (vals[len(lo):] * wr).sum(axis=1)
        fine = left + right
        diff = np.abs(fine - whole)
        ok = diff <= QUAD_TOL * scale * np.maximum((hi - lo) / width, 1e-6)
        if not np.all(np.isfinite(fine)):
            raise PriorError("the integrand is not finite on the support")
        if len(lo) * 2 > QUAD_MAX_PANELS:
            ok[:] = True
        total += float(fine[ok].sum())
        err += float(diff[ok].sum())
        bad = ~ok
        lo, hi = np.concatenate([lo[bad], mid[bad]]), np.concatenate([mid[bad], hi[bad]])
        whole = np.concatenate([left[bad], right[bad]])
    return total, err


def switch_points(truth: Vec, a: float, b: float, grid: int = INF_GRID, margin: Vec | None = None) -> list[float]:
    """The points of [a, b] where ``truth`` (a vectorised condition) changes value, each to rounding.
    ``margin`` (optional) is a function whose sign is the truth (m >= 0): its secant finds the point in
    one step where it is affine."""
    if margin is not None:
        fast = _affine(truth, margin, a, b)
        if fast is not None:
            return [fast[0]]
    xs = np.linspace(a, b, grid)
    t = np.broadcast_to(np.asarray(truth(xs), dtype=bool), xs.shape)
    cells = np.nonzero(t[1:] != t[:-1])[0]
    if not len(cells):
        return []
    cells = cells[:64]
    lo, hi = xs[cells], xs[cells + 1]
    right = t[cells + 1]
    return list(_bisect(truth, lo, hi, right, margin))


def _affine(truth: Vec, margin: Vec, a: float, b: float):
    """Where the margin is affine on [a, b] (checked at 5 points) and changes sign there: (its switch point,
    truth at a); else None (the caller's grid decides).  One evaluation, and one more to confirm the switch."""
    xs = np.linspace(a, b, 5)
    m = np.broadcast_to(np.asarray(margin(xs), dtype=float), xs.shape)
    if not np.all(np.isfinite(m)):
        return None
    line = m[0] + (m[-1] - m[0]) * (xs - a) / (b - a)
    if np.max(np.abs(m - line)) > 1e-13 * max(1.0, float(np.max(np.abs(m)))):
        return None
    at_a, at_b = m[0] >= 0, m[-1] >= 0
    if at_a == at_b:  # no sign change at the ends: an affine margin has no switch, but 5 samples cannot tell
        return None   # a kinked one from it (max(0, ...)); the grid decides
    hit = _secant(truth, margin, np.array([a]), np.array([b]), np.array([bool(at_b)]), known=(m[:1], m[-1:]))
    return None if hit is None else (float(hit[0]), bool(at_a))


def _secant(truth: Vec, margin: Vec, lo, hi, right, known=None):
    """Where the margin is affine on the bracket, its root, checked to be a switch of ``truth``; else None.
    ``known``: the margin at lo and hi, when already evaluated."""
    n = len(lo)
    if known is None:
        both = np.broadcast_to(np.asarray(margin(np.concatenate([lo, hi])), dtype=float), (2 * n,))
        ml, mh = both[:n], both[n:]
    else:
        ml, mh = known
    with np.errstate(all="ignore"):
        root = lo - ml * (hi - lo) / (mh - ml)
    if not np.all(np.isfinite(root)) or np.any(root < lo) or np.any(root > hi):
        return None
    step = 4 * np.finfo(float).eps * np.maximum(1.0, np.abs(root))
    below, above = np.maximum(root - step, lo), np.minimum(root + step, hi)
    pts = np.concatenate([below, root, above])
    tv = np.broadcast_to(np.asarray(truth(pts), dtype=bool), pts.shape)
    n = len(lo)
    tb, tr, ta = tv[:n], tv[n:2 * n], tv[2 * n:]
    hit = np.where(tr == right, root, above)
    ok = (tb != right) & ((tr == right) | (ta == right))
    return hit if np.all(ok) else None


def _bisect(truth: Vec, lo, hi, right, margin: Vec | None = None):
    """Shrink brackets [lo, hi] whose truth at hi is ``right`` (and not at lo) to rounding; return hi."""
    if margin is not None:
        hit = _secant(truth, margin, lo, hi, right)
        if hit is not None:
            return hit
    t = np.linspace(0.0, 1.0, 65)
    for _ in range(12):
        width = hi - lo
        if np.all(width <= 4 * np.finfo(float).eps * np.maximum(1.0, np.abs(hi))):
            break
        xs = lo[:, None] + width[:, None] * t
        xs[:, -1] = hi
        vals = np.broadcast_to(np.asarray(truth(xs), dtype=bool), xs.shape)
        same = vals == right[:, None]
        # the first point from which the truth stays equal to the right end's
        flip = np.where(same[:, ::-1].cumprod(axis=1).astype(bool)[:, ::-1], 1, 0)
        j = np.argmax(flip, axis=1)
        j = np.maximum(j, 1)
        lo, hi = xs[np.arange(len(j)), j - 1], xs[np.arange(len(j)), j]
    return hi


def infimum(truth: Vec, a: float, b: float, sup: bool = False, margin: Vec | None = None) -> float:
    """inf{x in [a, b]: truth(x)} (sup with ``sup``); the empty set gives b (sup: a)."""
    if margin is not None and b > a:
        fast = _affine(truth, margin, a, b)
        if fast is not None:
            root, at_a = fast
            if not sup:
                return a if at_a else root
            return root if at_a else b
    xs = np.linspace(a, b, INF_GRID)
    if sup:
        xs = xs[::-1]
    t = np.broadcast_to(np.asarray(truth(xs), dtype=bool), xs.shape)
    if t[0]:
        return float(xs[0])
    if not t.any():
        return float(xs[-1])
    j = int(np.argmax(t))
    lo, hi = np.array([xs[j - 1]]), np.array([xs[j]])
    if sup:  # search from the right: mirror the bracket
        def mirrored(y):
            return truth(-y)
        mm = (lambda y: margin(-y)) if margin is not None else None
        return float(-_bisect(mirrored, -lo, -hi, np.array([True]), mm)[0])
    return float(_bisect(truth, lo, hi, np.array([True]), margin)[0])


@dataclass
class Ironing:
    """Where the ironed function differs from the original: quantile intervals (ql, qr) and the slopes."""

    ql: np.ndarray
    qr: np.ndarray
    slope: np.ndarray


class Prior:
    """A continuous prior on [a, b]: uniform, or a density given as a vectorised function."""

    def __init__(self, name: str, a: float, b: float, density: Vec | None = None):
        if not (np.isfinite(a) and np.isfinite(b)) or not a < b:
            raise PriorError(f"the support [{a:g}, {b:g}] of type '{name}' is not an interval with a < b")
        self.name, self.a, self.b, self.density = name, float(a), float(b), density
        self._quantiles = None
        self._iron_nodes = None
        self._phibar = None
        if density is not None:
            edges = np.linspace(a, b, _DENSITY_CELLS + 1)
            x, w = _nodes(edges[:-1], edges[1:])
            d = _full(density, x)
            if not np.all(np.isfinite(d)):
                raise PriorError(f"the density of '{name}' is not finite on [{a:g}, {b:g}]")
            if np.any(d < 0):
                k = np.unravel_index(np.argmin(d), d.shape)
                raise PriorError(f"the density of '{name}' is negative at {x[k]:g} ({d[k]:g})")
            mass = (d * w).sum(axis=1)
            total = float(mass.sum())
            if abs(total - 1) > 1e-6:
                raise PriorError(f"the density of '{name}' integrates to {total:.9g} over [{a:g}, {b:g}], not 1",
                                 )
            self._edges = edges
            self._cum = np.concatenate([[0.0], np.cumsum(mass)])

    # ------------------------------------------------------------ the distribution
    def pdf(self, x):
        x = np.asarray(x, dtype=float)
        inside = (x >= self.a) & (x <= self.b)
        if self.density is None:
            return np.where(inside, 1.0 / (self.b - self.a), 0.0)
        return np.where(inside, _full(self.density, np.clip(x, self.a, self.b)), 0.0)

    def cdf(self, x):
        x = np.asarray(x, dtype=float)
        if self.density is None:
            return np.clip((x - self.a) / (self.b - self.a), 0.0, 1.0)
        xc = np.clip(x, self.a, self.b)
        flat = xc.reshape(-1)
        j = np.clip(np.searchsorted(self._edges, flat, side="right") - 1, 0, _DENSITY_CELLS - 1)
        nx, nw = _nodes(self._edges[j], flat)
        part = (_full(self.density, nx) * nw).sum(axis=1)
        return np.clip(self._cum[j] + part, 0.0, 1.0).reshape(x.shape)

    def quantile_grid(self) -> np.ndarray:
        """F^-1 at the IRON_CELLS + 1 equally spaced quantiles (cached)."""
        if self._quantiles is None:
            q = np.linspace(0.0, 1.0, IRON_CELLS + 1)
            if self.density is None:
                v = self.a + q * (self.b - self.a)
            else:
                qt = np.clip(q, 1e-14, 1 - 1e-14)  # the ends: where the mass starts and stops (a density may be 0)
                j = np.clip(np.searchsorted(self._cum, qt, side="left") - 1, 0, _DENSITY_CELLS - 1)
                lo, hi = self._edges[j].copy(), self._edges[j + 1].copy()
                for _ in range(60):  # bisection on the cdf: monotone, exact to rounding
                    mid = (lo + hi) / 2
                    below = self.cdf(mid) < qt
                    lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
                v = (lo + hi) / 2
            self._quantiles = v
        return self._quantiles

    def phi(self, x):
        """The revenue virtual value x - (1 - F(x)) / f(x)."""
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return x - (1.0 - self.cdf(x)) / self.pdf(x)

    def expect(self, f: Vec, switches=(), cond: Vec | None = None, cond_margin: Vec | None = None
               ) -> tuple[float, float]:
        """E[f(v)] (given cond, if any) and an error estimate; ``switches`` are the conditions in f, as
        (truth, margin or None) pairs."""
        breaks = [self.a, self.b]
        for s, m in list(switches) + ([(cond, cond_margin)] if cond is not None else []):
            breaks += switch_points(s, self.a, self.b, margin=m)
        if cond is None:
            return integrate(lambda x: f(x) * self.pdf(x), breaks)
        num, e1 = integrate(lambda x: np.where(cond(x), f(x), 0.0) * self.pdf(x), breaks)
        den, e2 = integrate(lambda x: np.where(cond(x), 1.0, 0.0) * self.pdf(x), breaks)
        if den <= 0:
            raise PriorError("the condition has probability 0")
        return num / den, (e1 + abs(num / den) * e2) / den

    # ------------------------------------------------------------ ironing
    def ironing(self, g: Vec) -> Ironing | None:
        """Where g, ironed under this prior, differs from g (None: g is already monotone)."""
        if self._iron_nodes is None:
            v = self.quantile_grid()
            x, w = _nodes(v[:-1], v[1:])
            self._iron_nodes = (x, self.pdf(x) * w)
        x, pw = self._iron_nodes
        with np.errstate(all="ignore"):
            inc = (_full(g, x) * pw).sum(axis=1)
        if not np.all(np.isfinite(inc)):
            raise PriorError("the function ironed is not finite on the support")
        dq = 1.0 / IRON_CELLS
        slopes = inc / dq
        scale = max(1.0, float(np.abs(slopes).max()))
        if np.all(np.diff(slopes) >= -CMP_TOL * scale):
            return None
        H = np.concatenate([[0.0], np.cumsum(inc)])
        q = np.linspace(0.0, 1.0, IRON_CELLS + 1)
        hull: list[int] = []  # lower convex hull, monotone chain
        for k in range(len(q)):
            while len(hull) >= 2:
                i, j = hull[-2], hull[-1]
                if (H[j] - H[i]) * (q[k] - q[i]) >= (H[k] - H[i]) * (q[j] - q[i]) - CMP_TOL * scale * dq:
                    hull.pop()
                else:
                    break
            hull.append(k)
        h = np.array(hull)
        gaps = np.nonzero(np.diff(h) > 1)[0]
        if not len(gaps):
            return None
        i, k = h[gaps], h[gaps + 1]
        return Ironing(q[i], q[k], (H[k] - H[i]) / (q[k] - q[i]))

    def ironed(self, g: Vec, iron: Ironing | None, x):
        """The ironed value of g at x, given its :meth:`ironing`."""
        x = np.asarray(x, dtype=float)
        gx = _full(g, x)
        if iron is None:
            return gx
        qx = self.cdf(x)
        j = np.searchsorted(iron.ql, qx, side="right") - 1
        jc = np.clip(j, 0, len(iron.ql) - 1)
        inside = (j >= 0) & (qx >= iron.ql[jc]) & (qx <= iron.qr[jc])
        return np.where(inside, iron.slope[jc], gx)

    def phibar(self, x):
        """The ironed revenue virtual value at x."""
        if self._phibar is None:
            self._phibar = (self.ironing(self.phi),)
        return self.ironed(self.phi, self._phibar[0], x)
