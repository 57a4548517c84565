"""Red-team checks of the audit's reuse of recorded layer outputs (commits 37bff1e, 5eee3d1): each test fails if
the audit's answer, or captum's own result, depends on the recorded output being something other than the
layer's product with its recorded input and weights."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from zennit_ref import import_zennit

import dtd_formal as dtd
from dtd_formal.audit import capture


def _x(shape, seed=0):  # type: ignore[no-untyped-def]
    return torch.rand(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


class DataScaled(nn.Module):
    """fc1's output is changed through ``.data`` (old-style code): the autograd graph, and every LRP library's
    relevance, still see fc1's plain product; ``.data`` has its own version counter, so the kept output's does
    not move."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2 = nn.Linear(4, 5), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        h.data.mul_(0.5)
        return self.fc2(h)


def _without_output_reuse(fn):  # type: ignore[no-untyped-def]
    orig = capture.Captured.output
    capture.Captured.output = lambda self, name: None  # type: ignore[method-assign]
    try:
        return fn()
    finally:
        capture.Captured.output = orig  # type: ignore[method-assign]


def test_an_output_changed_through_data_is_not_taken_for_the_layers_product_zennit() -> None:
    zc = import_zennit().composites
    model, x = DataScaled().double().eval(), _x((2, 4), 1)
    old = _without_output_reuse(lambda: dtd.audit(model, x, zc.EpsilonPlus(), target=0, roots=False))
    assert old.verdict == "sound"  # zennit recomputes z from the layer's input: it follows its rule
    rep = dtd.audit(model, x, zc.EpsilonPlus(), target=0, roots=False)
    fc1 = next(r for r in rep.layers if r.name == "fc1")
    assert fc1.max_deviation < 1e-9 and rep.verdict == "sound", rep.to_markdown()


def test_an_output_changed_through_data_is_not_taken_for_the_layers_product_captum() -> None:
    captum = pytest.importorskip("captum.attr")
    model, x = DataScaled().double().eval(), _x((2, 4), 1)
    old = _without_output_reuse(lambda: dtd.audit(model, x, captum.LRP(model), target=0, roots=False))
    assert next(r for r in old.layers if r.name == "fc1").max_deviation < 1e-9
    rep = dtd.audit(model, x, captum.LRP(model), target=0, roots=False)
    assert next(r for r in rep.layers if r.name == "fc1").max_deviation < 1e-9, rep.to_markdown()


def _captum_net(inplace: bool):  # type: ignore[no-untyped-def]
    from captum.attr._utils.lrp_rules import Alpha1_Beta0_Rule, EpsilonRule, GammaRule

    torch.manual_seed(1)
    m = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(inplace=inplace), nn.MaxPool2d(2),
                      nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU(inplace=inplace), nn.Flatten(),
                      nn.Linear(64, 5), nn.ReLU(), nn.Linear(5, 3)).double().eval()
    m[0].rule, m[3].rule, m[5].rule, m[6].rule = GammaRule(0.25), Alpha1_Beta0_Rule(), EpsilonRule(), EpsilonRule(0.1)
    return m


@pytest.mark.parametrize("inplace", [False, True])
def test_first_call_hooks_leave_captums_attribution_bit_for_bit(inplace: bool) -> None:
    captum = pytest.importorskip("captum.attr")
    x = _x((2, 2, 8, 8), 2) - 0.3
    plain = captum.LRP(_captum_net(inplace)).attribute(x.clone().requires_grad_(True), target=torch.tensor([0, 2]))
    hooked_model = _captum_net(inplace)
    cap = capture.Captured()
    handles = capture.install_first_call_hooks(hooked_model, cap)
    try:
        hooked = captum.LRP(hooked_model).attribute(x.clone().requires_grad_(True), target=torch.tensor([0, 2]))
    finally:
        for h in handles:
            h.remove()
    assert torch.equal(plain, hooked)
    assert all(not mod._forward_hooks and not mod._forward_pre_hooks for mod in hooked_model.modules())
    with torch.no_grad():  # the first pass's product as it came out, also where an in-place ReLU overwrote it
        assert torch.equal(cap.output("0"), hooked_model[0](x)) and cap.output("8") is not None


@pytest.mark.parametrize("target", [None, 1, [2, 0]])
def test_reusing_recorded_outputs_changes_no_layer_figure(target) -> None:  # type: ignore[no-untyped-def]
    """Every checked layer's deviation is the same whether the rule's plain term is read from the recorded output
    or recomputed (catches an output kept after captum's weight change, or from another call)."""
    captum = pytest.importorskip("captum.attr")
    zc = import_zennit().composites
    x = _x((2, 2, 8, 8), 2) - 0.3
    for make in (lambda m: captum.LRP(m), lambda m: zc.EpsilonGammaBox(low=-1.0, high=1.0)):
        m = _captum_net(False)
        rep = dtd.audit(m, x, make(m), target=target, roots=False)
        ref = _without_output_reuse(lambda: dtd.audit(m, x, make(m), target=target, roots=False))
        got = {r.name: r.max_deviation for r in rep.layers if r.max_deviation is not None}
        want = {r.name: r.max_deviation for r in ref.layers if r.max_deviation is not None}
        assert got.keys() == want.keys() and len(got) >= 4
        assert all(abs(got[k] - want[k]) < 1e-12 for k in got), (got, want)
        assert rep.verdict == ref.verdict


def test_a_captum_gamma_applied_twice_is_caught_at_its_layer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A conserving mutant (gamma applied twice before the relevance pass) departs from the gamma rule it names."""
    captum = pytest.importorskip("captum.attr")
    from captum.attr._utils.lrp_rules import GammaRule

    x = _x((2, 2, 8, 8), 2) - 0.3
    m = _captum_net(False)
    assert dtd.audit(m, x, captum.LRP(m), target=1, roots=False).verdict == "sound"
    original = GammaRule._manipulate_weights

    def twice(self, module, inputs, outputs):  # type: ignore[no-untyped-def]
        original(self, module, inputs, outputs)
        original(self, module, inputs, outputs)

    monkeypatch.setattr(GammaRule, "_manipulate_weights", twice)
    rep = dtd.audit(m, x, captum.LRP(m), target=1, roots=False)
    conv = next(r for r in rep.layers if r.name == "0")
    assert rep.verdict == "deviates" and conv.max_deviation > 1e-3
    assert all(r.max_deviation < 1e-9 for r in rep.layers if r.max_deviation is not None and r.name != "0")
