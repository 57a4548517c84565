"""The torch API a zennit user knows: composites by module type and name, preset names and spec strings,
canonizers as objects, target= (class, per-row classes, a relevance tensor), unbatched inputs, zennit's Gradient
attributor; and every catalogue rule and preset against zennit 0.5 (float64, relative 1e-6) on a VGG-like and a
ResNet-like model. zennit is optional: the parity tests skip cleanly without it."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from test_torch_zennit import CASES
from zennit_ref import import_zennit

import dtd_formal as dtd
import dtd_formal.torch as dt
from dtd_formal.errors import InputError
from dtd_formal.rules import LRP0, Epsilon, Flat, Gamma, LayerMapComposite, ZBox, ZPlus
from dtd_formal.rules.parse import parse_composite, parse_explainer
from dtd_formal.torch import composites as tc


def _bn(n: int) -> nn.BatchNorm2d:
    # eps tiny: zennit's merge leaves an identity BatchNorm that still divides by sqrt(1 + eps) (relative eps/2)
    bn = nn.BatchNorm2d(n, eps=1e-12)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.3, 0.3)
    return bn


def vgg_like(batchnorm: bool = False) -> nn.Module:
    torch.manual_seed(0)
    norm = (lambda n: [_bn(n)]) if batchnorm else (lambda n: [])
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), *norm(6), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), *norm(6), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten(),
        nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 5),
    ).double().eval()


class ResNetLike(nn.Module):
    """stem conv, one residual block (conv-relu-conv plus the identity, then relu), pool, classifier; with
    ``zennit_sum`` the residual sum is zennit's Sum module over the stacked branches (the same function)."""

    def __init__(self, zennit_sum: bool = False) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.relu0 = nn.ReLU()
        self.conv1 = nn.Conv2d(6, 6, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d((2, 2))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(24, 4)
        self.zennit_sum = zennit_sum
        if zennit_sum:
            from zennit.layer import Sum

            self.sum = Sum()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu0(self.stem(x))
        r = self.conv2(self.relu1(self.conv1(h)))
        s = self.sum(torch.stack([h, r], dim=-1)) if self.zennit_sum else h + r
        return self.fc(self.flatten(self.pool(self.relu2(s))))


def _resnet_pair() -> tuple[nn.Module, nn.Module]:
    ours = ResNetLike().double().eval()
    theirs = ResNetLike(zennit_sum=True).double().eval()
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def _zennit(model, x, composite, output):  # type: ignore[no-untyped-def]
    from zennit.attribution import Gradient

    with Gradient(model=model, composite=composite) as attributor:
        _, rel = attributor(x.clone().requires_grad_(True),
                            lambda y: torch.eye(y.shape[1], dtype=y.dtype)[[output]] * y)
    return rel


def _close(ours: torch.Tensor, ref: torch.Tensor) -> float:
    assert ref.abs().max() > 1e-8  # a non-trivial explanation
    return float((ours - ref).abs().max() / ref.abs().max())


RULES = CASES  # every catalogue rule with its zennit twin (one list for both test files)

PRESETS = [
    ("EpsilonPlus", {}), ("EpsilonAlpha2Beta1", {}), ("EpsilonPlusFlat", {}), ("EpsilonAlpha2Beta1Flat", {}),
    ("EpsilonGammaBox", {"low": -3.0, "high": 3.0}),
]


@pytest.mark.parametrize("name,make_zennit,rule", RULES, ids=[r[0] for r in RULES])
def test_every_rule_matches_zennit_on_a_resnet_like_model(name, make_zennit, rule) -> None:  # type: ignore[no-untyped-def]
    zennit = import_zennit()
    from zennit.composites import LayerMapComposite as ZLayerMap
    from zennit.layer import Sum
    from zennit.types import Activation, AvgPool, Convolution

    ours_model, their_model = _resnet_pair()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    zr = make_zennit(zennit)
    composite = ZLayerMap([(Activation, zennit.rules.Pass()), (Sum, zennit.rules.Norm()),
                           (AvgPool, zennit.rules.Norm()), (Convolution, zr), (nn.Linear, zr)])
    ref = _zennit(their_model, x, composite, output=3)
    assert _close(dt.lrp(ours_model, x, rule, output=3), ref) <= 1e-6


@pytest.mark.parametrize("preset,kwargs", PRESETS, ids=[p[0] for p in PRESETS])
@pytest.mark.parametrize("arch", ["vgg", "resnet"])
def test_every_preset_matches_zennit(preset, kwargs, arch) -> None:  # type: ignore[no-untyped-def]
    zennit = import_zennit()
    import zennit.composites as zc

    if arch == "vgg":
        ours_model = their_model = vgg_like()
        x = torch.randn(2, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    else:
        ours_model, their_model = _resnet_pair()
        x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ref = _zennit(their_model, x, getattr(zc, preset)(**kwargs), output=1)
    ours = dt.lrp(ours_model, x, getattr(tc, preset)(**kwargs), output=1)
    assert _close(ours, ref) <= 1e-6
    del zennit


TUTORIAL = """
{imports}
canonizers = [SequentialMergeBatchNorm()]
composite = EpsilonGammaBox(low=-3.0, high=3.0, canonizers=canonizers)
target = torch.eye(5, dtype=torch.float64)[[3]]
with Gradient(model=model, composite=composite) as attributor:
    output, attribution = attributor(data, target)
relevance = attribution.sum(1)
"""

ZENNIT_IMPORTS = """from zennit.attribution import Gradient
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import EpsilonGammaBox"""

OUR_IMPORTS = """from dtd_formal.torch.attribution import Gradient
from dtd_formal.torch.canonizers import SequentialMergeBatchNorm
from dtd_formal.torch.composites import EpsilonGammaBox"""


def test_a_zennit_tutorial_script_runs_with_only_its_imports_changed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The tutorial's steps (a VGG-like model with BatchNorm, EpsilonGammaBox with low/high, the BatchNorm
    canonizer, a one-hot target, the channel-summed heatmap saved as PNG) give zennit's numbers."""
    import_zennit()
    results = {}
    for who, imports in (("zennit", ZENNIT_IMPORTS), ("dtd", OUR_IMPORTS)):
        model = vgg_like(batchnorm=True)
        data = torch.randn(1, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
        scope = {"torch": torch, "model": model, "data": data}
        exec(TUTORIAL.format(imports=imports), scope)  # noqa: S102 - the test's own script text
        results[who] = scope
        # the model is restored: same output as an untouched copy after the block
        assert torch.equal(model(data), vgg_like(batchnorm=True)(data))
    assert torch.allclose(results["dtd"]["output"], results["zennit"]["output"], rtol=1e-12, atol=1e-12)
    assert _close(results["dtd"]["relevance"], results["zennit"]["relevance"]) <= 1e-6
    from dtd_formal.torch.heatmap import save_heatmap

    save_heatmap(results["dtd"]["relevance"][0], tmp_path / "heatmap.png")
    assert (tmp_path / "heatmap.png").stat().st_size > 100


# ---------------------------------------------------------------------------------------------- without zennit
def _mlp_conv() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).double().eval()


def test_composites_choose_by_module_type_then_name_and_refuse_a_layer_without_rule() -> None:
    model = _mlp_conv()
    x = torch.rand(2, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    by_type = LayerMapComposite({nn.Conv2d: Gamma(0.25), nn.Linear: Epsilon(1e-6)})
    by_kind = LayerMapComposite({"conv": Gamma(0.25), "linear": Epsilon(1e-6)})
    assert torch.equal(dt.lrp(model, x, by_type, output=0), dt.lrp(model, x, by_kind, output=0))
    # a name entry wins over the type entry: layer "3" (the Linear) with LRP-0 instead of epsilon
    named = LayerMapComposite({nn.Conv2d: Gamma(0.25), nn.Linear: Epsilon(1e-6)}, name_map={"3": ZPlus()})
    reference = LayerMapComposite({nn.Conv2d: Gamma(0.25), nn.Linear: ZPlus()})
    assert torch.equal(dt.lrp(model, x, named, output=0), dt.lrp(model, x, reference, output=0))
    assert not torch.allclose(dt.lrp(model, x, named, output=0), dt.lrp(model, x, by_type, output=0))
    with pytest.raises(InputError, match=r"no rule for layer 2 \(linear, module '3' Linear\)"):
        dt.lrp(model, x, LayerMapComposite({nn.Conv2d: Gamma(0.25)}), output=0)
    # the same type keys on the exact engine's MLP (no modules: Linear by the layer kind)
    net = dtd.Network([[[1.0, -2.0], [0.5, 1.0]], [[1.0, 1.0]]], [[0.1, 0.0], [0.0]])
    exact = dtd.lrp(net, [1.0, 2.0], LayerMapComposite({nn.Linear: ZPlus()}))
    assert list(exact.input) == list(dtd.lrp(net, [1.0, 2.0], ZPlus()).input)


def test_presets_and_rules_from_spec_strings() -> None:
    c = parse_composite("epsilon-gamma-box:low=-3,high=3,gamma=1/2@zennit")
    assert isinstance(c, tc.base.EpsilonGammaBox)
    conv_first = c.rule_for(1, 3, "conv")
    assert isinstance(conv_first, ZBox) and conv_first.bias == "zennit" and float(conv_first.low) == -3.0
    assert float(c.rule_for(2, 3, "conv").gamma) == 0.5
    assert isinstance(parse_composite("EpsilonAlpha2Beta1Flat").rule_for(1, 3, "linear"), Flat)
    assert isinstance(parse_explainer("gamma:0.25"), Gamma)
    with pytest.raises(InputError, match="known: epsilon-alpha2-beta1"):
        parse_composite("epsilon-minus")
    with pytest.raises(InputError, match="takes low, high"):
        parse_composite("epsilon-gamma-box")
    model = _mlp_conv()
    x = torch.rand(1, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    assert torch.equal(dt.lrp(model, x, "epsilon-plus@zennit", output=1),
                       dt.lrp(model, x, tc.EpsilonPlus(), output=1))


def test_target_as_class_per_row_classes_and_relevance_tensor() -> None:
    model = _mlp_conv()
    x = torch.rand(2, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    rule = Epsilon(1e-6)
    assert torch.equal(dt.lrp(model, x, rule, target=2), dt.lrp(model, x, rule, output=2))
    per_row = dt.lrp(model, x, rule, target=[0, 2])
    assert torch.allclose(per_row[0], dt.lrp(model, x[:1], rule, output=0)[0], rtol=1e-12, atol=1e-15)
    assert torch.allclose(per_row[1], dt.lrp(model, x[1:], rule, output=2)[0], rtol=1e-12, atol=1e-15)
    assert not torch.allclose(per_row[0], dt.lrp(model, x[:1], rule, output=2)[0])
    # a relevance tensor is R^L itself (zennit's grad_outputs): the one-hot gives the relevance divided by f_c(x)
    y = model(x).detach()
    onehot = torch.eye(3, dtype=torch.float64)[[2]]
    scaled = dt.lrp(model, x, LRP0(), target=onehot)
    plain = dt.lrp(model, x, LRP0(), output=2)
    assert torch.allclose(scaled * y[:, 2].reshape(2, 1, 1, 1), plain, rtol=1e-10, atol=1e-14)
    with pytest.raises(InputError, match="output= or target="):
        dt.lrp(model, x, rule, output=1, target=2)
    with pytest.raises(InputError, match="relevance tensor of shape"):
        dt.lrp(model, x, rule, target=torch.ones(4, dtype=torch.float64))
    assert torch.equal(dtd.lrp(model, x, rule, target=1), dt.lrp(model, x, rule, output=1))


def test_unbatched_input_and_shape_errors_name_the_first_layer() -> None:
    model = _mlp_conv()
    x = torch.rand(3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    single = dt.lrp(model, x, ZPlus(), output=1)
    assert single.shape == x.shape
    assert torch.equal(single, dt.lrp(model, x[None], ZPlus(), output=1)[0])
    with pytest.raises(InputError, match=r"first layer '0' \(Conv2d, weight \(4, 3, 3, 3\)\)"):
        dt.lrp(model, torch.rand(6, 6, dtype=torch.float64), ZPlus())


def test_canonizers_are_objects_and_unknown_ones_are_refused() -> None:
    from dtd_formal.torch.canonizers import SequentialMergeBatchNorm

    model = vgg_like(batchnorm=True)
    x = torch.rand(1, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    with_canonizer = dt.lrp(model, x, tc.EpsilonPlus(canonizers=[SequentialMergeBatchNorm()]), output=0)
    assert torch.equal(with_canonizer, dt.lrp(model, x, tc.EpsilonPlus(), output=0))

    class AttributeCanonizer:  # a rewrite the backend does not know
        pass

    with pytest.raises(InputError, match="canonizer AttributeCanonizer is not supported"):
        dt.lrp(model, x, tc.EpsilonPlus(canonizers=[AttributeCanonizer()]), output=0)


def test_gradient_attributor_defaults_to_the_output_as_its_relevance() -> None:
    from dtd_formal.torch.attribution import Gradient

    model = _mlp_conv()
    x = torch.rand(2, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    with Gradient(model=model, composite=LRP0()) as attributor:
        out, rel = attributor(x)
        _, rel_fn = attributor(x, lambda y: y * torch.eye(3, dtype=y.dtype)[[1]])
    assert torch.equal(out, model(x))
    # R^L = f(x): the sum over every output's LRP-0 relevance
    total = sum(dt.lrp(model, x, LRP0(), output=c) for c in range(3))
    assert torch.allclose(rel, total, rtol=1e-10, atol=1e-14)
    assert torch.allclose(rel_fn, dt.lrp(model, x, LRP0(), output=1), rtol=1e-12, atol=1e-15)
