"""The torch backend's bias="zennit" rules and presets against zennit itself, on a small VGG-like convnet (float64).

zennit is an optional test dependency (`pip install --no-deps zennit`); these tests skip cleanly without it.
zennit's composites are built to compute the same function as the backend: the rule on every Conv/Linear, its
``Norm`` on average pools, and ReLU/max-pool gradients as they are (the backend's ReLU gate). The presets are
compared with zennit's own presets (their ``Pass`` on ReLUs changes nothing for these rules: their contributions
vanish at inactive neurons).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from zennit_ref import import_zennit

import dtd_formal.torch as dt
from dtd_formal.rules import (
    LRP0,
    AlphaBeta,
    Epsilon,
    EpsilonAlpha2Beta1,
    EpsilonGammaBox,
    EpsilonPlus,
    EpsilonPlusFlat,
    Flat,
    Gamma,
    WSquare,
    ZBox,
    ZPlus,
)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def _vgg_like() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten(),
        nn.Linear(32, 16), nn.ReLU(), nn.Dropout(), nn.Linear(16, 5),
    ).double().eval()


def _zennit(model, x, composite, output):  # type: ignore[no-untyped-def]
    from zennit.attribution import Gradient

    xin = x.clone().requires_grad_(True)
    with Gradient(model=model, composite=composite) as attributor:
        _, rel = attributor(xin, lambda y: torch.eye(y.shape[1], dtype=y.dtype, device=y.device)[[output]] * y)
    return rel


CASES = [
    ("zplus", lambda z: z.rules.ZPlus(), ZPlus(bias="zennit")),
    ("epsilon", lambda z: z.rules.Epsilon(epsilon=1e-6), Epsilon(1e-6, bias="zennit")),
    ("lrp0", lambda z: z.rules.Epsilon(epsilon=0), LRP0(bias="zennit")),
    ("gamma", lambda z: z.rules.Gamma(gamma=0.25), Gamma(0.25, bias="zennit")),
    ("alphabeta", lambda z: z.rules.AlphaBeta(alpha=2, beta=1), AlphaBeta(2, 1, bias="zennit")),
    ("zbox", lambda z: z.rules.ZBox(low=-3.0, high=3.0), ZBox(-3.0, 3.0, bias="zennit")),
    ("wsquare", lambda z: z.rules.WSquare(), WSquare(bias="zennit")),
    ("flat", lambda z: z.rules.Flat(), Flat(bias="zennit")),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", ["pass", "gate"])
@pytest.mark.parametrize("name,make_zennit,rule", CASES, ids=[c[0] for c in CASES])
def test_each_rule_matches_zennit_on_a_convnet(name, make_zennit, rule, activation, device) -> None:  # type: ignore[no-untyped-def]
    """activation="pass" (the zennit convention's default) against zennit with Pass on every ReLU, "gate"
    against zennit with the ReLU's own gradient."""
    zennit = import_zennit()
    from zennit.composites import LayerMapComposite
    from zennit.types import Activation, AvgPool, Convolution

    model = _vgg_like().to(device)
    x = torch.randn(3, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).to(device)
    zrule = make_zennit(zennit)
    layer_map = [(AvgPool, zennit.rules.Norm()), (Convolution, zrule), (nn.Linear, zrule)]
    if activation == "pass":
        layer_map.insert(0, (Activation, zennit.rules.Pass()))
    ref = _zennit(model, x, LayerMapComposite(layer_map), output=2)
    ours = dt.lrp(model, x, rule, output=2, activation=None if activation == "pass" else "gate")
    assert ref.abs().max() > 1e-6
    assert float((ours - ref).abs().max() / ref.abs().max()) <= 1e-6


def test_pass_and_gate_differ_where_the_rule_reaches_inactive_neurons() -> None:
    """WSquare gives relevance to inactive neurons: the gate drops it, Pass keeps it (the issue measured a
    relative difference of 0.77-0.98); for z+ (zero at inactive neurons) the two agree."""
    model = _vgg_like()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    passed = dt.lrp(model, x, WSquare(bias="zennit"), output=1)
    gated = dt.lrp(model, x, WSquare(bias="zennit"), output=1, activation="gate")
    assert float((passed - gated).abs().max() / passed.abs().max()) > 0.05
    zp, zg = (dt.lrp(model, x, ZPlus(), output=1, activation=a) for a in ("pass", "gate"))
    assert torch.allclose(zp, zg, rtol=1e-12, atol=1e-15)


PRESETS = [
    ("epsilon_plus", lambda z: z.composites.EpsilonPlus(), EpsilonPlus(bias="zennit")),
    ("epsilon_alpha2_beta1", lambda z: z.composites.EpsilonAlpha2Beta1(), EpsilonAlpha2Beta1(bias="zennit")),
    ("epsilon_gamma_box", lambda z: z.composites.EpsilonGammaBox(low=-3.0, high=3.0),
     EpsilonGammaBox(-3.0, 3.0, bias="zennit")),
    ("epsilon_plus_flat", lambda z: z.composites.EpsilonPlusFlat(), EpsilonPlusFlat(bias="zennit")),
]


@pytest.mark.parametrize("name,make_zennit,composite", PRESETS, ids=[p[0] for p in PRESETS])
def test_presets_match_zennit_presets(name, make_zennit, composite) -> None:  # type: ignore[no-untyped-def]
    zennit = import_zennit()
    model = _vgg_like()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ref = _zennit(model, x, make_zennit(zennit), output=1)
    ours = dt.lrp(model, x, composite, output=1)
    assert ref.abs().max() > 1e-6
    assert float((ours - ref).abs().max() / ref.abs().max()) <= 1e-6


def test_batchnorm_convnet_matches_zennit_with_its_canonizer() -> None:
    zennit = import_zennit()
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import LayerMapComposite
    from zennit.types import Convolution

    torch.manual_seed(3)
    # eps=0: zennit's canonizer leaves an identity BatchNorm behind that still divides by sqrt(1 + eps), a relative
    # change of eps/2 (5e-6 at the default eps=1e-5) that the backend's exact fold does not make
    bn = nn.BatchNorm2d(4, eps=0.0)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), bn, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).double().eval()
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    zr = zennit.rules.ZPlus()
    composite = LayerMapComposite([(Convolution, zr), (nn.Linear, zr)], canonizers=[SequentialMergeBatchNorm()])
    ref = _zennit(model, x, composite, output=0)
    ours = dt.lrp(model, x, ZPlus(bias="zennit"), output=0)
    assert float((ours - ref).abs().max() / ref.abs().max()) <= 1e-6
