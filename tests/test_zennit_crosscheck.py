"""bias="zennit" rules of the exact engine against zennit itself (float64), on MLPs.

zennit is an optional test dependency (`pip install --no-deps zennit`); these tests skip cleanly without it.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import dtd_formal as dtd  # noqa: E402
from dtd_formal.rules import AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZBox, ZPlus  # noqa: E402

from zennit_ref import import_zennit  # noqa: E402


def _zennit_relevance(model: "torch.nn.Module", x: np.ndarray, zrule, output: int, first_rule=None,  # type: ignore[no-untyped-def]
                      activation: str = "pass") -> np.ndarray:
    """zennit's relevance; ``activation="pass"`` puts its Pass rule on every ReLU (as its presets do), "gate"
    leaves the ReLU's gradient."""
    zennit = import_zennit()
    from zennit.attribution import Gradient
    from zennit.composites import LayerMapComposite, SpecialFirstLayerMapComposite
    from zennit.types import Activation

    layer_map = [(torch.nn.Linear, zrule)] + ([(Activation, zennit.rules.Pass())] if activation == "pass" else [])
    if first_rule is None:
        composite = LayerMapComposite(layer_map)
    else:
        composite = SpecialFirstLayerMapComposite(layer_map, [(torch.nn.Linear, first_rule)])
    inp = torch.tensor(x[None, :], dtype=torch.float64, requires_grad=True)
    with Gradient(model=model, composite=composite) as attributor:
        out, rel = attributor(inp, lambda y: torch.eye(y.shape[1], dtype=y.dtype)[[output]] * y)
    del zennit
    return rel[0].detach().numpy()


def _random_net(seed: int, sizes=(5, 7, 6, 3), final_relu=False) -> dtd.Network:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(size=(o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=o) * 0.5 for o in sizes[1:]]
    return dtd.Network(Ws, bs, final_relu=final_relu)


CASES = [
    ("epsilon", lambda z: z.rules.Epsilon(epsilon=1e-6), Epsilon(1e-6, bias="zennit")),
    ("lrp0", lambda z: z.rules.Epsilon(epsilon=0), dtd.rules.LRP0(bias="zennit")),
    ("zplus", lambda z: z.rules.ZPlus(), ZPlus(bias="zennit")),
    ("gamma", lambda z: z.rules.Gamma(gamma=0.25), Gamma(0.25, bias="zennit")),
    ("alphabeta", lambda z: z.rules.AlphaBeta(alpha=2, beta=1), AlphaBeta(2, 1, bias="zennit")),
    ("wsquare", lambda z: z.rules.WSquare(), WSquare(bias="zennit")),
    ("flat", lambda z: z.rules.Flat(), Flat(bias="zennit")),
]


@pytest.mark.parametrize("name,make_zennit,rule", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("activation", ["pass", "gate"])
def test_exact_zennit_convention_matches_zennit(name, make_zennit, rule, seed, activation) -> None:  # type: ignore[no-untyped-def]
    """The exact engine's activation="pass" (the zennit convention's default) and "gate" against zennit with
    Pass on the ReLUs and without it."""
    zennit = import_zennit()
    net = _random_net(seed, final_relu=bool(seed))
    rng = np.random.default_rng(100 + seed)
    x = rng.normal(size=5)  # negative inputs too: zennit's generalised rules are defined there
    output = int(np.argmax(net.to_float().forward(x)))
    ref = _zennit_relevance(net.to_torch(), x, make_zennit(zennit), output, activation=activation)
    ours = dtd.to_float(dtd.lrp(net, x, rule, output=output, activation=None if activation == "pass" else "gate").input)
    assert np.abs(ref).max() > 1e-3  # a non-trivial explanation
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())


def test_zbox_first_layer_then_epsilon_matches_zennit() -> None:
    zennit = import_zennit()
    net = _random_net(3)
    x = np.random.default_rng(5).uniform(-1, 1, size=5)
    composite_rule = dtd.rules.LayerwiseComposite(
        hidden=Epsilon(1e-6, bias="zennit"), first=ZBox(-1.0, 1.0, bias="zennit")
    )
    ours = dtd.to_float(dtd.lrp(net, x, composite_rule, output=1).input)
    ref = _zennit_relevance(
        net.to_torch(), x, zennit.rules.Epsilon(epsilon=1e-6), 1, first_rule=zennit.rules.ZBox(low=-1.0, high=1.0)
    )
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())
