r"""Proof of absence of root exits: a sound relaxation with branching on the input box (exact rationals).

On a sub-box B of the input domain, with exact interval bounds of :math:`a = a_{l-1}(x)`:

1. **Step.** :math:`z_j = \mathrm{den} + k` with :math:`\mathrm{den} = (w_j \odot D)\cdot a + w_j \cdot e` and
   :math:`k = (w_j \odot (1 - D))\cdot a + b_j - w_j\cdot e`. With :math:`z_j > 0` (a ReLU layer) this gives
   :math:`\mathrm{den} > \underline z_j^+ - \overline k`; if den has a fixed sign, t lies in the intersection of
   :math:`[z_j]/[\mathrm{den}]` and :math:`1 + [k]/[\mathrm{den}]` (both exact interval quotients; for z+ the
   second one uses disjoint coordinates and is tight). An unbounded t fails the box (it is split).
2. **Products (McCormick/interval).** The bilinear term :math:`t\,u_m(a)` in
   :math:`\tilde z_m - z_m = \Delta_m = -t\,u_m(a)`, :math:`u_m = (w_m \odot D)\cdot a + w_m\cdot e`, is bounded by
   the four corner products of [t] and [u_m] (the McCormick envelope's range on the box); :math:`\Delta_m \equiv 0`
   when :math:`w_m \odot D = 0` and :math:`w_m \cdot e = 0`. Also :math:`\tilde z_m \in W_m [\tilde a] + b_m` with
   :math:`\tilde a_i = a_i (1 - t D_i) - t e_i`; both enclosures are intersected.
3. **Differences upward.** :math:`d_l = \mathrm{relu}(\tilde z_l) - \mathrm{relu}(z_l)` with
   :math:`d_j = -z_j` (the root zeroes neuron j) and, since relu is monotone and 1-Lipschitz,
   :math:`d_m \in [\min(0, \underline\Delta_m), \max(0, \overline\Delta_m)]`; then
   :math:`\Delta_{k} = W_k d_{k-1}` and so on through the upper layers.
4. **Verdict.** Neuron m cannot flip from + to - unless :math:`\overline z_m > 0`, :math:`\underline{\tilde z}_m < 0`
   and :math:`\underline\Delta_m < 0` (and symmetrically). If no neuron of the scope can flip, B is safe.

When the intervals leave a few flips open, the LP relaxation of :mod:`dtd_formal.smt.mccormick` (McCormick
envelopes of :math:`t a_i` coupled with the step equation and the layer maps, triangle ReLU relaxations) is tried
per open flip, and counts only with an exactly checked Farkas certificate. Otherwise the prover bisects the box
(widest dimension, weighted by the first layer's weights). The certificate is the split tree (preorder: -1 =
interval-safe leaf, -2 = LP-certified leaf, d = split at the exact midpoint of dimension d), which
:func:`check_certificate` replays with the same exact tests. All arithmetic is exact (gmpy2 rationals / Fractions).
Not implemented: branching on t (only the input box is split).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import numpy as np

from ..exact import FAST_RATIONAL, to_fast
from .bounds import affine_interval, interval_bounds, relu_interval, split_weights
from .problem import RootExitProblem

_Z = FAST_RATIONAL(0)
_ONE = FAST_RATIONAL(1)
INF = float("inf")


def _mul(x: Any, y: Any) -> Any:
    return _Z if (x == 0 or y == 0) else x * y


def _imul(al: Any, ah: Any, bl: Any, bh: Any) -> tuple[Any, Any]:
    """Exact interval product (0 * inf = 0)."""
    c = [_mul(al, bl), _mul(al, bh), _mul(ah, bl), _mul(ah, bh)]
    return min(c), max(c)


def _imul_vec(al: np.ndarray, ah: np.ndarray, bl: Any, bh: Any) -> tuple[np.ndarray, np.ndarray]:
    c = [al * bl, al * bh, ah * bl, ah * bh]
    return np.minimum(np.minimum(c[0], c[1]), np.minimum(c[2], c[3])), np.maximum(np.maximum(c[0], c[1]), np.maximum(c[2], c[3]))


def _quot(nl: Any, nh: Any, dl: Any, dh: Any, den_pos: bool) -> tuple[Any, Any]:
    """[n]/[d] for a denominator of known sign; d may touch 0 on the open side (then an end is infinite)."""
    if den_pos:
        if dl > 0:
            c = [nl / dl, nl / dh, nh / dl, nh / dh]
            return min(c), max(c)
        if nl >= 0:
            return nl / dh, (INF if nh > 0 else _Z)
        if nh <= 0:
            return (-INF if nl < 0 else _Z), nh / dh
        return -INF, INF
    if dh < 0:
        c = [nl / dl, nl / dh, nh / dl, nh / dh]
        return min(c), max(c)
    return -INF, INF


@dataclass
class _Prep:
    """Per-problem exact data of the box test."""

    D: np.ndarray
    e: np.ndarray
    wj: np.ndarray
    den_p: np.ndarray
    den_n: np.ndarray
    den_c: Any
    k_p: np.ndarray
    k_n: np.ndarray
    k_c: Any
    C_p: np.ndarray
    C_n: np.ndarray
    C_zero: np.ndarray
    u_c: np.ndarray


def prepare(P: RootExitProblem) -> _Prep:
    D, e = P.direction  # type: ignore[misc]
    D, e = to_fast(D), to_fast(e)
    W, b = P.net.fast_layers[P.layer - 1]
    wj = W[P.neuron]
    dc = wj * D
    kc = wj * (_ONE - D)
    den_c = (wj * e).sum() if len(e) else _Z
    C = W * D[None, :]
    u_c = W.dot(e)
    return _Prep(D, e, wj, np.where(dc > 0, dc, _Z), np.where(dc < 0, dc, _Z), den_c + _Z,
                 np.where(kc > 0, kc, _Z), np.where(kc < 0, kc, _Z), b[P.neuron] - den_c,
                 np.where(C > 0, C, _Z), np.where(C < 0, C, _Z), np.array([all(c == 0 for c in row) for row in C]), u_c)


def box_analysis(P: RootExitProblem, prep: _Prep, lo: np.ndarray, hi: np.ndarray) -> tuple[bool, "BoxInfo | None"]:
    """(safe, info): safe if no input in [lo, hi] (exact) has an exit of neuron j's root in the proof scope
    (module docstring); otherwise ``info`` holds the enclosures and the flips the intervals could not exclude
    (None when t is unbounded on the box)."""
    net, l, j = P.net, P.layer, P.neuron
    B = interval_bounds(net, lo, hi)
    al, ah = B.a[l - 1]
    zl, zh = B.z[l - 1]
    relu = net.has_relu(l)
    if relu and zh[j] <= 0:
        return True, None  # neuron j never active: no root
    zjl = max(zl[j], _Z) if relu else zl[j]
    zjh = zh[j]
    dl = prep.den_p.dot(al) + prep.den_n.dot(ah) + prep.den_c
    dh = prep.den_p.dot(ah) + prep.den_n.dot(al) + prep.den_c
    kl = prep.k_p.dot(al) + prep.k_n.dot(ah) + prep.k_c
    kh = prep.k_p.dot(ah) + prep.k_n.dot(al) + prep.k_c
    dl, dh = max(dl, zjl - kh), min(dh, zjh - kl)
    if dl > dh:
        return True, None  # empty: no x in the box satisfies the constraints
    den_pos = dl > 0 or (relu and zjl - kh >= 0)
    if not den_pos and not dh < 0:
        return False, None
    if den_pos and dh <= 0:
        return True, None  # den > 0 is required but impossible on the box

    t1 = _quot(zjl, zjh, dl, dh, den_pos)
    q = _quot(kl, kh, dl, dh, den_pos)
    tl, th = max(t1[0], _ONE + q[0]), min(t1[1], _ONE + q[1])
    if relu:
        tl, th = (max(tl, _Z), th) if den_pos else (tl, min(th, _Z))
    if tl == -INF or th == INF:
        return False, None
    if tl > th:
        return True, None
    info = BoxInfo(B, tl, th, [], {})
    cands = info.candidates
    scope = P.proof_scope
    W, b = net.fast_layers[l - 1]
    Wp, Wn, _ = split_weights(net)[l - 1]
    # root enclosure r_i = a_i (1 - t D_i) - t e_i
    fl, fh = _ONE - np.where(prep.D > 0, prep.D * th, prep.D * tl), _ONE - np.where(prep.D > 0, prep.D * tl, prep.D * th)
    rl, rh = _imul_vec(al, ah, fl, fh)
    el, eh = _imul_vec(np.full(len(prep.e), tl, dtype=object), np.full(len(prep.e), th, dtype=object), prep.e, prep.e)
    rl, rh = rl - eh, rh - el
    zrl, zrh = affine_interval(Wp, Wn, b, rl, rh)
    # Delta_m = -t u_m
    ul = prep.C_p.dot(al) + prep.C_n.dot(ah) + prep.u_c
    uh = prep.C_p.dot(ah) + prep.C_n.dot(al) + prep.u_c
    n_l = len(zl)
    Dl = np.empty(n_l, dtype=object)
    Dh = np.empty(n_l, dtype=object)
    for m in range(n_l):
        if prep.C_zero[m] and prep.u_c[m] == 0:
            Dl[m] = Dh[m] = _Z
        else:
            lo_, hi_ = _imul(tl, th, ul[m], uh[m])
            Dl[m], Dh[m] = -hi_, -lo_
    zrl = np.maximum(zrl, zl + Dl)
    zrh = np.minimum(zrh, zh + Dh)
    info.root[l] = (zrl, zrh)
    if not relu:
        return True, None  # no pattern in this layer and nothing above it
    for m in range(n_l):
        if m == j:
            continue
        if zh[m] > 0 and zrl[m] < 0 and Dl[m] < 0:
            cands.append((l, m, 1))
        if zl[m] < 0 and zrh[m] > 0 and Dh[m] > 0:
            cands.append((l, m, -1))
    if scope == "layer":
        return not cands, info
    # differences upward
    a_l, a_h = relu_interval(zl, zh)
    ar_l, ar_h = relu_interval(zrl, zrh)
    dlo = np.minimum(Dl, _Z)
    dhi = np.maximum(Dh, _Z)
    dlo = np.maximum(dlo, ar_l - a_h)
    dhi = np.minimum(dhi, ar_h - a_l)
    ar_l, ar_h = ar_l.copy(), ar_h.copy()
    ar_l[j] = ar_h[j] = _Z
    dlo[j], dhi[j] = -zjh, -zjl
    for k in range(l + 1, net.n_layers + 1):
        Wpk, Wnk, bk = split_weights(net)[k - 1]
        zkl, zkh = B.z[k - 1]
        Dkl, Dkh = affine_interval(Wpk, Wnk, _Z, dlo, dhi)
        rkl, rkh = affine_interval(Wpk, Wnk, bk, ar_l, ar_h)
        rkl, rkh = np.maximum(rkl, zkl + Dkl), np.minimum(rkh, zkh + Dkh)
        info.root[k] = (rkl, rkh)
        if not net.has_relu(k):
            break
        for m in range(len(zkl)):
            if zkh[m] > 0 and rkl[m] < 0 and Dkl[m] < 0:
                cands.append((k, m, 1))
            if zkl[m] < 0 and rkh[m] > 0 and Dkh[m] > 0:
                cands.append((k, m, -1))
        a_l, a_h = relu_interval(zkl, zkh)
        ar_l, ar_h = relu_interval(rkl, rkh)
        dlo = np.maximum(np.minimum(Dkl, _Z), ar_l - a_h)
        dhi = np.minimum(np.maximum(Dkh, _Z), ar_h - a_l)
    return not cands, info


@dataclass
class BoxInfo:
    """Enclosures of one box: input-side bounds, t range, root-side pre-activation bounds per layer, and the
    flips (layer, neuron, sigma) the interval test could not exclude."""

    B: Any
    tl: Any
    th: Any
    candidates: list[tuple[int, int, int]]
    root: dict[int, tuple[np.ndarray, np.ndarray]]


def box_safe(P: RootExitProblem, prep: _Prep, lo: np.ndarray, hi: np.ndarray) -> bool:
    """True if the interval test (:func:`box_analysis`) shows the box free of exits."""
    return box_analysis(P, prep, lo, hi)[0]


def _split_dim(P: RootExitProblem, lo: np.ndarray, hi: np.ndarray, weight: np.ndarray) -> int:
    w = [(h - l) * c for l, h, c in zip(lo, hi, weight)]
    return int(max(range(len(w)), key=lambda i: w[i]))


@dataclass
class ProofResult:
    status: str  # "proved" | "refuted" | "unknown"
    tree: list[int]
    boxes: int
    proved_volume: Fraction
    counterexample: Any = None
    reason: str = ""


def prove_by_relaxation(P: RootExitProblem, deadline: float, max_boxes: int = 200_000,
                        probe: Callable[[np.ndarray, np.ndarray], Any] | None = None, use_lp: bool = True) -> ProofResult:
    """Branch and bound over the input box: the interval test (:func:`box_analysis`) first, then (``use_lp``) the
    McCormick LP relaxation with exact Farkas certificates (:func:`dtd_formal.smt.mccormick.box_lp_safe`) for the
    flips the intervals left open; ``probe(lo, hi)`` may return a counterexample for an unsafe box (called every
    few splits). Leaves: -1 = interval-safe, -2 = LP-certified."""
    from .mccormick import box_lp_safe

    prep = prepare(P)
    lo0, hi0 = to_fast(P.low), to_fast(P.high)
    W1 = P.net.fast_layers[0][0]
    weight = np.array([sum(abs(v) for v in W1[:, i]) + FAST_RATIONAL(1, 10**6) for i in range(W1.shape[1])], dtype=object)
    total = np.prod([h - l for l, h in zip(lo0, hi0)]) if len(lo0) else _ONE
    tree: list[int] = []
    stack = [(lo0, hi0, 0)]
    boxes = 0
    proved = FAST_RATIONAL(0)
    while stack:
        if time.monotonic() > deadline or boxes >= max_boxes:
            frac = Fraction(int((proved / total).numerator), int((proved / total).denominator)) if total else Fraction(0)
            return ProofResult("unknown", tree, boxes, frac, reason=f"budget: {boxes} boxes, proved volume "
                               f"{float(frac):.3g}")
        lo, hi, depth = stack.pop()
        boxes += 1
        safe, info = box_analysis(P, prep, lo, hi)
        if safe:
            tree.append(-1)
            proved += np.prod([h - l for l, h in zip(lo, hi)]) if len(lo) else _ONE
            continue
        if use_lp and info is not None and box_lp_safe(P, prep, lo, hi, info, deadline):
            tree.append(-2)
            proved += np.prod([h - l for l, h in zip(lo, hi)]) if len(lo) else _ONE
            continue
        if probe is not None and depth % 3 == 2:
            cex = probe(lo, hi)
            if cex is not None:
                return ProofResult("refuted", tree, boxes, Fraction(0), counterexample=cex)
        d = _split_dim(P, lo, hi, weight)
        if hi[d] == lo[d]:
            return ProofResult("unknown", tree, boxes, Fraction(0), reason="degenerate box cannot be split")
        mid = (lo[d] + hi[d]) / 2
        tree.append(d)
        lo2, hi1 = lo.copy(), hi.copy()
        hi1[d] = mid
        lo2[d] = mid
        stack.append((lo2, hi, depth + 1))  # right child after the left one (preorder)
        stack.append((lo, hi1, depth + 1))
    return ProofResult("proved", tree, boxes, Fraction(1))


def check_certificate(P: RootExitProblem, tree: list[int]) -> bool:
    """Replay a split tree exactly: every leaf box must pass :func:`box_safe` (-1) or the LP relaxation with a
    freshly derived, exactly checked Farkas certificate (-2), and the tree must be complete."""
    prep = prepare(P)
    pos = 0
    stack = [(to_fast(P.low), to_fast(P.high))]
    while stack:
        if pos >= len(tree):
            return False
        lo, hi = stack.pop()
        d = tree[pos]
        pos += 1
        if d == -1:
            if not box_safe(P, prep, lo, hi):
                return False
            continue
        if d == -2:
            from .mccormick import box_lp_safe

            if not box_lp_safe(P, prep, lo, hi, box_analysis(P, prep, lo, hi)[1], time.monotonic() + 3600):
                return False
            continue
        mid = (lo[d] + hi[d]) / 2
        lo2, hi1 = lo.copy(), hi.copy()
        hi1[d] = mid
        lo2[d] = mid
        stack.append((lo2, hi))
        stack.append((lo, hi1))
    return pos == len(tree)


__all__ = ["box_safe", "prove_by_relaxation", "check_certificate", "ProofResult", "prepare"]
