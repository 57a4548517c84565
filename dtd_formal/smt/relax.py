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
per open flip, and counts only with an exactly checked Farkas certificate. Before that, where float64 finds
no input of the box that activates neuron j, the LP of the layers below l with :math:`z_j > 0`
(:func:`dtd_formal.smt.mccormick.box_inactive_lp`) may show, with an exactly checked Farkas certificate, that j
is inactive on the whole box: then it has no root there (this proves neurons that are dead on the domain, where
intervals alone are too loose). Otherwise the prover bisects the box (widest dimension, weighted by the first
layer's weights). The certificate is the split tree (preorder: -1 = interval-safe leaf, -2 = LP-certified leaf,
-4 = inactive leaf (interval bound or LP certificate), d = split at the exact midpoint of dimension d, -3 = split
of the node's step range), which :func:`check_certificate` re-derives node by node with the same exact tests and
the prover's deterministic branching rule. All arithmetic is exact (gmpy2 rationals / Fractions, the matrix
products in integers); the enclosures of t, of the root side and of the upper layers are rounded outward to the
dyadic grid :math:`2^{-64}` (:func:`dtd_formal.smt.bounds.outward`, :func:`dtd_formal.smt.bounds.grid_interval`),
which keeps them sound and the rationals small.

**Branching on t.** A node is a pair (box, t-slice :math:`[t_L, t_U]`); its t enclosure is intersected with the
slice, which tightens every product :math:`t\,u_m` and the McCormick envelopes, and the slice itself is a pair of
linear constraints on a (:func:`_slice_empty`) that shrink, by bound propagation (:func:`_tighten_box`), the
node's input box for layer 1 (a = x, :func:`node_box`; the sign of den is the sign of t there) and the interval
bounds of :math:`a_{l-1}` in deeper layers. Bisecting the exact t enclosure of a node covers every x of the node
(each has its step in one half), so the split tree over boxes and t-slices is still a complete certificate.
``branch="both"`` (default) splits t where that shrinks the bounds of a at least as much as a box bisection
(:func:`_choose_t`), else the box.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import numpy as np

from ..exact import FAST_RATIONAL, to_fast
from .bounds import IntegerSplit, grid_interval, integer_split, interval_bounds, matrix_split, outward, relu_interval
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
    C: IntegerSplit
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
                 matrix_split(C), np.array([all(c == 0 for c in row) for row in C]), u_c)


def _slice_empty(prep: _Prep, al: np.ndarray, ah: np.ndarray, tl: Any, th: Any, den_pos: bool) -> bool:
    r"""Whether no a in [al, ah] has its step in [tl, th] (t-branching). With den > 0, :math:`t \ge t_L` means
    :math:`z_j - t_L\,\mathrm{den} \ge 0` and :math:`t \le t_U` means :math:`z_j - t_U\,\mathrm{den} \le 0`
    (den < 0: reversed); both are linear in a, :math:`(w_j - s\, w_j \odot D)\cdot a + b_j - s\, w_j\cdot e`,
    and their exact range over the box decides emptiness."""
    if tl == -INF or th == INF:
        return False
    for s, need_nonneg in ((tl, den_pos), (th, not den_pos)):
        c = prep.wj - s * prep.wj * prep.D
        const = prep.k_c + prep.den_c - s * prep.den_c  # b_j - s w_j.e  (k_c = b_j - w_j.e, den_c = w_j.e)
        cp, cn = np.where(c > 0, c, _Z), np.where(c < 0, c, _Z)
        vmin = cp.dot(al) + cn.dot(ah) + const
        vmax = cp.dot(ah) + cn.dot(al) + const
        if need_nonneg and vmax < 0:
            return True
        if not need_nonneg and vmin > 0:
            return True
    return False


def _tighten_box(prep: _Prep, lo: np.ndarray, hi: np.ndarray, t_lo: Any, t_hi: Any, den_pos: bool
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """Layer 1 (a = x): shrink the input box with the two linear slice constraints of :func:`_slice_empty`
    (one pass of bound propagation, exact, the new bounds rounded outward to the grid of :func:`outward` but not
    beyond the given box); None if the box becomes empty."""
    lo0, hi0 = lo, hi
    lo, hi = lo.copy(), hi.copy()
    for s, need_nonneg in ((t_lo, den_pos), (t_hi, not den_pos)):
        if s == -INF or s == INF:
            continue
        c = prep.wj - s * prep.wj * prep.D
        const = prep.k_c + prep.den_c - s * prep.den_c
        # need_nonneg: c.x + const >= 0, else c.x + const <= 0 (multiply by -1 to reuse the >= form)
        if not need_nonneg:
            c, const = -c, -const
        tops = [max(ci * l, ci * h) for ci, l, h in zip(c, lo, hi)]
        total = sum(tops, _Z) + const
        for i, ci in enumerate(c):
            if ci == 0:
                continue
            bound = -(total - tops[i]) / ci  # c_i x_i >= -(const + sum_{k != i} max c_k x_k)
            if ci > 0 and bound > lo[i]:
                lo[i] = bound
            elif ci < 0 and bound < hi[i]:
                hi[i] = bound
        if any(l > h for l, h in zip(lo, hi)):
            return None
    lo, hi = outward(lo, hi)
    return np.maximum(lo, lo0), np.minimum(hi, hi0)


def node_box(P: RootExitProblem, prep: _Prep, lo: np.ndarray, hi: np.ndarray, t_lo: Any, t_hi: Any
             ) -> tuple[np.ndarray, np.ndarray] | None:
    """The input box of a node (box, t-slice): for layer 1 with a ReLU, shrunk by :func:`_tighten_box`, where the
    sign of den is the sign of t (:math:`z_j > 0`); None when no input of the box has its step in the slice.
    Deterministic, so :func:`check_certificate` re-derives the same boxes."""
    if t_lo is None or P.layer != 1 or not P.net.has_relu(1):
        return lo, hi
    if t_lo >= 0:
        return _tighten_box(prep, lo, hi, t_lo, t_hi, True)
    if t_hi <= 0:
        return _tighten_box(prep, lo, hi, t_lo, t_hi, False)
    return lo, hi


def box_analysis(P: RootExitProblem, prep: _Prep, lo: np.ndarray, hi: np.ndarray, t_lo: Any = None,
                 t_hi: Any = None) -> tuple[bool, "BoxInfo | None"]:
    """(safe, info): safe if no input in [lo, hi] (exact) with a step t in [t_lo, t_hi] (default: any t) has an
    exit of neuron j's root in the proof scope (module docstring); otherwise ``info`` holds the enclosures and the
    flips the intervals could not exclude (None when t is unbounded on the box)."""
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
    tl, th = outward(max(t1[0], _ONE + q[0]), min(t1[1], _ONE + q[1]))
    if relu:
        tl, th = (max(tl, _Z), th) if den_pos else (tl, min(th, _Z))
    if t_lo is not None:
        tl, th = max(tl, t_lo), min(th, t_hi)
        if tl > th:
            return True, None  # no input of the box has its step in the slice
        if _slice_empty(prep, al, ah, tl, th, den_pos):
            return True, None
        if l > 1:  # deeper layers: the slice also shrinks the bounds of a = a_{l-1} (layer 1: see node_box)
            tight = _tighten_box(prep, al, ah, tl, th, den_pos)
            if tight is None:
                return True, None
            al, ah = tight
            B.a[l - 1] = (al, ah)
    if tl == -INF or th == INF:
        return False, None
    if tl > th:
        return True, None
    info = BoxInfo(B, tl, th, [], {}, den_pos)
    cands = info.candidates
    scope = P.proof_scope
    b = net.fast_layers[l - 1][1]
    # root enclosure r_i = a_i (1 - t D_i) - t e_i
    fl, fh = _ONE - np.where(prep.D > 0, prep.D * th, prep.D * tl), _ONE - np.where(prep.D > 0, prep.D * tl, prep.D * th)
    rl, rh = _imul_vec(al, ah, fl, fh)
    el, eh = _imul_vec(np.full(len(prep.e), tl, dtype=object), np.full(len(prep.e), th, dtype=object), prep.e, prep.e)
    rl, rh = rl - eh, rh - el
    zrl, zrh = grid_interval(integer_split(net, l), b, rl, rh)
    # Delta_m = -t u_m
    ul, uh = grid_interval(prep.C, prep.u_c, al, ah)
    n_l = len(zl)
    Dl = np.empty(n_l, dtype=object)
    Dh = np.empty(n_l, dtype=object)
    for m in range(n_l):
        if prep.C_zero[m] and prep.u_c[m] == 0:
            Dl[m] = Dh[m] = _Z
        else:
            lo_, hi_ = _imul(tl, th, ul[m], uh[m])
            Dl[m], Dh[m] = -hi_, -lo_
    zrl, zrh = outward(np.maximum(zrl, zl + Dl), np.minimum(zrh, zh + Dh))
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
        Sk, bk = integer_split(net, k), net.fast_layers[k - 1][1]
        zkl, zkh = B.z[k - 1]
        Dkl, Dkh = grid_interval(Sk, _Z, dlo, dhi)
        rkl, rkh = grid_interval(Sk, bk, ar_l, ar_h)
        rkl, rkh = outward(np.maximum(rkl, zkl + Dkl), np.minimum(rkh, zkh + Dkh))
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
        dlo, dhi = outward(np.maximum(np.minimum(Dkl, _Z), ar_l - a_h), np.minimum(np.maximum(Dkh, _Z), ar_h - a_l))
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
    den_pos: bool = True


def box_safe(P: RootExitProblem, prep: _Prep, lo: np.ndarray, hi: np.ndarray, t_lo: Any = None,
             t_hi: Any = None) -> bool:
    """True if the interval test (:func:`box_analysis`) shows the box (and t-slice) free of exits."""
    return box_analysis(P, prep, lo, hi, t_lo, t_hi)[0]


def _split_dim(P: RootExitProblem, lo: np.ndarray, hi: np.ndarray, weight: np.ndarray) -> int:
    w = [(h - l) * c for l, h, c in zip(lo, hi, weight)]
    return int(max(range(len(w)), key=lambda i: w[i]))


#: split-tree codes: d >= 0 = bisect input dimension d; leaves and the t split are negative
LEAF_INTERVAL, LEAF_LP, SPLIT_T, LEAF_INACTIVE = -1, -2, -3, -4
BRANCHING = ("box", "t", "both")


@dataclass
class ProofResult:
    status: str  # "proved" | "refuted" | "unknown"
    tree: list[int]
    boxes: int
    proved_volume: Fraction
    counterexample: Any = None
    reason: str = ""
    t_splits: int = 0


def _volume(lo: np.ndarray, hi: np.ndarray) -> Any:
    v = _ONE
    for l, h in zip(lo, hi):
        v = v * (h - l)
    return v


def _choose_t(P: RootExitProblem, prep: _Prep, branch: str, info: Any, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Whether to bisect the t-range of this node. "box": never; "t": whenever t is bounded; "both": when the two
    t-slices shrink the bounds of the layer input a (layer 1: the input box, :func:`node_box`; deeper layers: the
    interval bounds of :math:`a_{l-1}`, as :func:`box_analysis` shrinks them) so that each child is at most half as
    large as the node (as after a box bisection) and both together at most 3/4 of it (a box bisection keeps the
    total volume); volumes over the dimensions of non-zero width."""
    if branch == "box" or info is None or not info.th > info.tl:
        return False
    if branch == "t":
        return True
    mid = (info.tl + info.th) / 2
    if P.layer == 1:
        if not P.net.has_relu(1):
            return False
        al, ah = lo, hi
        children = [node_box(P, prep, lo, hi, a, b) for a, b in ((info.tl, mid), (mid, info.th))]
    else:
        al, ah = info.B.a[P.layer - 1]
        children = [_tighten_box(prep, al, ah, a, b, info.den_pos) for a, b in ((info.tl, mid), (mid, info.th))]
    dims = [i for i in range(len(al)) if ah[i] > al[i]]
    if not dims:
        return False
    V = _volume(al[dims], ah[dims])
    vols = [_volume(c[0][dims], c[1][dims]) if c is not None else _Z for c in children]
    return max(vols) * 2 <= V and sum(vols, _Z) * 4 <= V * 3


def prove_by_relaxation(P: RootExitProblem, deadline: float, max_boxes: int = 200_000,
                        probe: Callable[[np.ndarray, np.ndarray], Any] | None = None, use_lp: bool = True,
                        branch: str = "both") -> ProofResult:
    """Branch and bound over the input box and the step t: the interval test (:func:`box_analysis`) first, then
    (``use_lp``) the McCormick LP relaxation with exact Farkas certificates
    (:func:`dtd_formal.smt.mccormick.box_lp_safe`) for the flips the intervals left open; ``probe(lo, hi)`` may
    return a counterexample for an unsafe box (called every few splits). ``branch`` picks what is bisected:
    "box" (input dimensions only), "t" (the t-range of the node whenever it is bounded, else the box) or "both"
    (alternating). Leaves: -1 = interval-safe, -2 = LP-certified; -3 = t bisected at the midpoint of the node's
    exact t enclosure (the children keep the box and take [t_L, mid] and [mid, t_U]; every x of the node has its
    step in one of them); -4 = neuron j is inactive on the box (:func:`dtd_formal.smt.mccormick.box_inactive_lp`,
    tried first at every node where :func:`_active_somewhere` finds no active input)."""
    from .mccormick import box_inactive_lp, box_lp_safe

    if branch not in BRANCHING:
        raise ValueError(f"branch must be one of {BRANCHING}, got {branch!r}")
    inactive: dict[tuple, bool] = {}  # per box (the t-slices of a box share the answer)
    prep = prepare(P)
    lo0, hi0 = to_fast(P.low), to_fast(P.high)
    weight = _split_weight(P)
    tree: list[int] = []
    # (lo, hi, t_lo, t_hi, box depth, t depth, volume share of the node)
    stack: list[tuple[Any, ...]] = [(lo0, hi0, None, None, 0, 0, _ONE)]
    boxes = 0
    t_splits = 0
    proved = FAST_RATIONAL(0)
    while stack:
        if time.monotonic() > deadline or boxes >= max_boxes:
            frac = Fraction(int(proved.numerator), int(proved.denominator))
            return ProofResult("unknown", tree, boxes, frac, reason=f"budget: {boxes} nodes ({t_splits} t-splits), "
                               f"proved share {float(frac):.3g}", t_splits=t_splits)
        lo, hi, t_lo, t_hi, depth, t_depth, share = stack.pop()
        boxes += 1
        box = node_box(P, prep, lo, hi, t_lo, t_hi)
        if box is None:  # no input of the box has its step in the slice
            tree.append(LEAF_INTERVAL)
            proved += share
            continue
        lo, hi = box
        if use_lp and P.relu:
            key = (tuple(lo), tuple(hi))
            if key not in inactive:
                inactive[key] = not _active_somewhere(P, lo, hi) and box_inactive_lp(P, lo, hi, deadline)
            if inactive[key]:
                tree.append(LEAF_INACTIVE)
                proved += share
                continue
        safe, info = box_analysis(P, prep, lo, hi, t_lo, t_hi)
        if safe:
            tree.append(LEAF_INTERVAL)
            proved += share
            continue
        if use_lp and info is not None and box_lp_safe(P, prep, lo, hi, info, deadline):
            tree.append(LEAF_LP)
            proved += share
            continue
        if probe is not None and (depth + t_depth) % 3 == 2:
            cex = probe(lo, hi)
            if cex is not None:
                return ProofResult("refuted", tree, boxes, Fraction(0), counterexample=cex, t_splits=t_splits)
        if _choose_t(P, prep, branch, info, lo, hi):
            mid = (info.tl + info.th) / 2
            tree.append(SPLIT_T)
            t_splits += 1
            stack.append((lo, hi, mid, info.th, depth, t_depth + 1, share / 2))
            stack.append((lo, hi, info.tl, mid, depth, t_depth + 1, share / 2))
            continue
        d = _split_dim(P, lo, hi, weight)
        if hi[d] == lo[d]:
            return ProofResult("unknown", tree, boxes, Fraction(0), reason="degenerate box cannot be split",
                               t_splits=t_splits)
        mid = (lo[d] + hi[d]) / 2
        tree.append(d)
        lo2, hi1 = lo.copy(), hi.copy()
        hi1[d] = mid
        lo2[d] = mid
        stack.append((lo2, hi, t_lo, t_hi, depth + 1, t_depth, share / 2))  # right child after the left (preorder)
        stack.append((lo, hi1, t_lo, t_hi, depth + 1, t_depth, share / 2))
    return ProofResult("proved", tree, boxes, Fraction(1), t_splits=t_splits)


def _active_somewhere(P: RootExitProblem, lo: np.ndarray, hi: np.ndarray, n: int = 8) -> bool:
    """Whether float64 finds :math:`z_j > 0` at the centre of the box or at one of n fixed pseudo-random points
    of it (then :func:`dtd_formal.smt.mccormick.box_inactive_lp` cannot succeed and is not tried; a heuristic
    only: the certificate never depends on it)."""
    fnet = P.net.to_float()
    flo = np.array([float(v) for v in lo])
    fhi = np.array([float(v) for v in hi])
    a = np.vstack([(flo + fhi) / 2, flo + (fhi - flo) * np.random.default_rng(0).random((n, len(flo)))])
    for k in range(1, P.layer + 1):
        z = a @ fnet.weights[k - 1].T + fnet.biases[k - 1]
        a = np.maximum(z, 0.0) if P.net.has_relu(k) else z
    return bool(np.any(z[:, P.neuron] > 0))


def _split_weight(P: RootExitProblem) -> np.ndarray:
    """Per input dimension: the first layer's column sums of |W| (plus 1e-6), the prover's bisection weights."""
    W1 = P.net.fast_layers[0][0]
    return np.array([sum(abs(v) for v in W1[:, i]) + FAST_RATIONAL(1, 10**6) for i in range(W1.shape[1])],
                    dtype=object)


def check_certificate(P: RootExitProblem, tree: list[int], branch: str = "both") -> bool:
    """Whether the split tree re-derives exactly (:func:`certificate_problems` finds nothing)."""
    return not certificate_problems(P, tree, branch)


def certificate_problems(P: RootExitProblem, tree: list[int], branch: str = "both") -> list[str]:
    r"""Re-derive a split tree exactly; returns the problems found (empty: the proof checks).

    Every node is recomputed from the problem alone: its box and t-slice (the root's box, bisected at the exact
    midpoints the codes say), :func:`node_box` and :func:`box_analysis`. A leaf -1 must pass the interval test; a
    leaf -2 must fail it and pass the LP relaxation with a freshly derived, exactly checked Farkas certificate; a
    split must be at a node the interval test does not settle, and must be the split the prover's deterministic
    rule makes there (:func:`_choose_t` with ``branch``, else :func:`_split_dim`), so a tree is accepted only as
    the prover would have written it; a leaf -4 must pass the inactivity test (:math:`z_j \le 0` on the node's
    box by interval bounds, or by the LP with a freshly derived, exactly checked Farkas certificate); the codes
    must cover the whole box and be used up exactly.
    """
    from .mccormick import box_inactive_lp, box_lp_safe

    if branch not in BRANCHING:
        return [f"branch {branch!r} is not one of {', '.join(BRANCHING)}"]
    if not isinstance(tree, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in tree):
        return ["the split tree must be a list of integers"]
    prep = prepare(P)
    weight = _split_weight(P)
    pos = 0
    stack: list[tuple[Any, ...]] = [(to_fast(P.low), to_fast(P.high), None, None)]
    while stack:
        if pos >= len(tree):
            return [f"the tree ends after {pos} codes but the box is not covered"]
        lo, hi, t_lo, t_hi = stack.pop()
        d = tree[pos]
        node = pos
        pos += 1
        box = node_box(P, prep, lo, hi, t_lo, t_hi)
        if box is None:
            if d != LEAF_INTERVAL:
                return [f"node {node}: the slice is empty (an interval leaf -1), the tree says {d}"]
            continue
        lo, hi = box
        if d == LEAF_INACTIVE:
            if not (P.relu and box_inactive_lp(P, lo, hi, time.monotonic() + 3600)):
                return [f"node {node}: no exactly checked Farkas certificate that neuron {P.neuron} is inactive"]
            continue
        safe, info = box_analysis(P, prep, lo, hi, t_lo, t_hi)
        if safe:
            if d != LEAF_INTERVAL:
                return [f"node {node}: the interval test settles the node (a leaf -1), the tree says {d}"]
            continue
        if d == LEAF_INTERVAL:
            return [f"node {node}: the tree says interval leaf, but the interval test does not settle the node"]
        if d == LEAF_LP:
            if not box_lp_safe(P, prep, lo, hi, info, time.monotonic() + 3600):
                return [f"node {node}: the LP relaxation gives no exactly checked Farkas certificate"]
            continue
        if _choose_t(P, prep, branch, info, lo, hi):
            if d != SPLIT_T:
                return [f"node {node}: the prover splits t here (-3), the tree says {d}"]
            mid = (info.tl + info.th) / 2
            stack.append((lo, hi, mid, info.th))
            stack.append((lo, hi, info.tl, mid))
            continue
        want = _split_dim(P, lo, hi, weight)
        if d != want:
            return [f"node {node}: the prover bisects dimension {want} here, the tree says {d}"]
        mid = (lo[d] + hi[d]) / 2
        lo2, hi1 = lo.copy(), hi.copy()
        hi1[d] = mid
        lo2[d] = mid
        stack.append((lo2, hi, t_lo, t_hi))
        stack.append((lo, hi1, t_lo, t_hi))
    if pos != len(tree):
        return [f"the box is covered after {pos} codes, the tree has {len(tree)}"]
    return []


__all__ = ["box_safe", "prove_by_relaxation", "check_certificate", "certificate_problems", "ProofResult", "prepare", "BRANCHING"]
