"""dtd.audit: each case is one where a wrong auditor gives a wrong answer (a leak it misses or places wrongly, a
departure it does not see, a sound setup it flags). zennit and captum are optional: their tests skip without."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from test_torch_api import ResNetLike, vgg_like
from zennit_ref import import_zennit

import dtd_formal as dtd
from dtd_formal.cli import main
from dtd_formal.errors import InputError
from dtd_formal.rules import AlphaBeta, Epsilon, ZPlus


def _x(shape, seed=0):  # type: ignore[no-untyped-def]
    return torch.rand(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def test_a_correct_zennit_setup_is_sound_at_float64_level_and_matches_the_exact_engine() -> None:
    zc = import_zennit().composites
    model = vgg_like()
    rep = dtd.audit(model, _x((1, 3, 12, 12), 2), zc.EpsilonPlus(), target=1, exact=True, roots=False)
    assert rep.verdict == "sound", rep.to_markdown()
    checked = [r for r in rep.layers if r.max_deviation is not None]
    assert sorted(r.kind for r in checked) == ["avgpool", "conv", "conv", "conv", "linear", "linear", "maxpool"]
    assert max(r.max_deviation for r in checked) < 1e-12
    assert rep.end_to_end["reference"] == "exact" and rep.end_to_end["max_deviation"] < 1e-12
    assert rep.restored and not rep.uncovered
    # the ReLUs carry zennit's Pass (conserved), the convolutions absorb by their bias as z+ defines
    relus = [r for r in rep.layers if r.kind == "relu"]
    assert relus and all(r.rule == "pass" and abs(r.absorbed) < 1e-15 for r in relus)


def test_a_residual_block_without_canonizer_leaks_at_the_add_and_the_report_names_it() -> None:
    zc = import_zennit().composites
    rep = dtd.audit(ResNetLike().double().eval(), _x((2, 3, 8, 8), 3), zc.EpsilonPlus(), target=0, roots=False)
    assert rep.verdict == "leaks"
    leaks = [r for r in rep.layers if r.finding == "leak"]
    assert [r.name for r in leaks] == ["add"] and leaks[0].kind == "add"
    assert leaks[0].relevance_out == pytest.approx(2 * leaks[0].relevance_in, rel=1e-12)  # summed twice
    assert any(u["name"] == "add" and "relu0, conv2" in u["reason"] for u in rep.uncovered)
    # the same model explained by dtd_formal (proportional sum) is sound against the exact engine
    ours = dtd.audit(ResNetLike().double().eval(), _x((1, 3, 8, 8), 3), "epsilon-plus@zennit", target=0,
                     exact=True, roots=False)
    assert ours.verdict == "sound" and ours.end_to_end["max_deviation"] < 1e-12


def test_an_unfused_batchnorm_is_reported_and_the_canonizer_fixes_it() -> None:
    zennit = import_zennit()
    from zennit.canonizers import SequentialMergeBatchNorm

    model, x = vgg_like(batchnorm=True), _x((2, 3, 12, 12), 4)
    plain = dtd.audit(model, x, zennit.composites.EpsilonPlus(), target=1, roots=False)
    assert plain.verdict == "uncovered"
    assert sorted(u["name"] for u in plain.uncovered if u["kind"] == "BatchNorm2d") == ["1", "4"]
    assert plain.end_to_end["max_deviation"] > 0.01  # zennit's numbers differ from the folded model's rules
    merged = dtd.audit(model, x, zennit.composites.EpsilonPlus(canonizers=[SequentialMergeBatchNorm()]), target=1,
                       roots=False)
    assert merged.verdict == "sound", merged.to_markdown()
    (canon,) = merged.canonizers
    assert canon.name == "SequentialMergeBatchNorm" and canon.restored and canon.max_output_change < 1e-12


class FunctionalNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(6)
        self.c1, self.c2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.c1(x))
        return self.fc(torch.flatten(F.relu(torch.add(h, self.c2(h))), 1))


def test_functional_relu_and_add_are_reported_uncovered() -> None:
    zc = import_zennit().composites
    rep = dtd.audit(FunctionalNet().double().eval(), _x((1, 3, 8, 8), 5), zc.EpsilonPlus(), target=2, roots=False)
    kinds = {u["name"]: u["kind"] for u in rep.uncovered}
    assert kinds == {"relu": "function relu", "add": "function add", "relu_1": "function relu"}
    assert rep.verdict == "leaks"  # the add's plain gradient duplicates relevance


def test_a_composite_missing_a_rule_for_one_linear_names_it() -> None:
    zennit = import_zennit()
    from zennit.composites import LayerMapComposite
    from zennit.types import Activation, AvgPool, Convolution

    model = vgg_like()
    only_first = [(Activation, zennit.rules.Pass()), (AvgPool, zennit.rules.Norm()),
                  (Convolution, zennit.rules.ZPlus())]
    composite = zennit.composites.NameMapComposite([(("9",), zennit.rules.Epsilon())])
    layered = LayerMapComposite(only_first)
    rep = dtd.audit(model, _x((1, 3, 12, 12), 7), layered, target=0, roots=False)
    missing = {u["name"] for u in rep.uncovered if "no rule" in u["reason"]}
    assert missing == {"9", "11"}
    assert {r.name for r in rep.layers if r.finding == "leak"} == {"9", "11"}
    assert rep.verdict == "leaks"
    del composite


def test_a_rule_that_computes_something_else_is_caught_at_its_layer() -> None:
    """A zennit Epsilon subclass that claims epsilon = 0.5 (its stabiliser object) but divides by z + 0.05 z/|z|:
    the first layer that departs is named; the others agree with the definition."""
    zennit = import_zennit()
    from zennit.composites import LayerMapComposite
    from zennit.types import Activation, AvgPool, Convolution

    class SloppyEpsilon(zennit.rules.Epsilon):
        def __init__(self) -> None:
            super().__init__(epsilon=0.5)
            stabilizer_fn = zennit.core.Stabilizer.ensure(0.5)  # what it claims: z + 0.5 sign0(z)

            def mapper(out_grad, outputs):  # type: ignore[no-untyped-def]
                assert stabilizer_fn is not None  # read by the auditor from this closure; not what divides
                return out_grad / (outputs[0] + 0.05 * torch.sign(outputs[0]))

            self.gradient_mapper = mapper

    composite = LayerMapComposite([(Activation, zennit.rules.Pass()), (AvgPool, zennit.rules.Norm()),
                                   (Convolution, zennit.rules.ZPlus()), (nn.Linear, SloppyEpsilon())])
    rep = dtd.audit(vgg_like(), _x((2, 3, 12, 12), 8), composite, target=3, roots=False)
    assert rep.verdict == "deviates", rep.to_markdown()
    assert rep.first_departure in ("9", "11")
    devs = {r.name: r.max_deviation for r in rep.layers if r.max_deviation is not None}
    assert all(devs[n] < 1e-12 for n in ("0", "2", "5"))
    assert max(devs["9"], devs["11"]) > 1e-3


def test_a_rule_the_auditor_cannot_read_is_never_called_sound() -> None:
    zennit = import_zennit()
    from zennit.composites import LayerMapComposite
    from zennit.types import Activation, Convolution

    class Opaque(zennit.rules.Epsilon):
        def __init__(self) -> None:
            super().__init__()
            self.gradient_mapper = lambda out_grad, outputs: out_grad / outputs[0]

    composite = LayerMapComposite([(Activation, zennit.rules.Pass()), (Convolution, zennit.rules.ZPlus()),
                                   (nn.Linear, Opaque())])
    rep = dtd.audit(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)).double().eval(),
                    _x((1, 1, 4, 4), 12), composite, target=0, roots=False)
    assert rep.verdict == "uncovered"
    assert any(u["name"] == "3" and "not checked" in u["reason"] for u in rep.uncovered)


def test_captum_lrp_is_checked_against_its_own_conventions() -> None:
    captum = pytest.importorskip("captum.attr")
    from captum.attr._utils.lrp_rules import Alpha1_Beta0_Rule, EpsilonRule, GammaRule

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.c1, self.r1, self.p = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
            self.c2, self.r2 = nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()
            self.f1, self.r3, self.f2 = nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.r2(self.c2(self.p(self.r1(self.c1(x)))))
            return self.f2(self.r3(self.f1(torch.flatten(h, 1))))

    model = Net().double().eval()
    model.c1.rule, model.c2.rule, model.f1.rule = GammaRule(0.25), Alpha1_Beta0_Rule(), EpsilonRule(1e-6)
    rep = dtd.audit(model, torch.randn(2, 3, 8, 8, dtype=torch.float64), captum.LRP(model), target=1, roots=False)
    rules = {r.name: r.rule for r in rep.layers}
    assert rules["c1"] == "captum-gamma:0.25" and rules["c2"] == "captum-alpha1-beta0"
    checked = [r.max_deviation for r in rep.layers if r.max_deviation is not None]
    assert len(checked) == 5 and max(checked) < 1e-12  # c1, c2, f1, f2 and the max-pool (winner-takes-all)
    assert rep.end_to_end["max_deviation"] < 1e-6 and rep.verdict == "sound"
    assert all(hasattr(m, "rule") is False or m.rule is not None for m in model.modules())


def test_a_callable_is_compared_end_to_end_with_what_it_claims() -> None:
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)).double().eval()
    x = _x((2, 3), 9) - 0.5

    def honest(m, xb, t):  # type: ignore[no-untyped-def]
        return dtd.torch.lrp(m, xb, Epsilon(1e-6, bias="zennit"), target=t)

    ok = dtd.audit(model, x, honest, claims=Epsilon(1e-6, bias="zennit"), target=0, exact=True)
    assert ok.verdict == "sound" and ok.end_to_end["reference"] == "exact"
    bad = dtd.audit(model, x, honest, claims=ZPlus(bias="zennit"), target=0, exact=True)
    assert bad.verdict == "deviates" and bad.end_to_end["max_deviation"] > 1e-3
    with pytest.raises(InputError, match="claims="):
        dtd.audit(model, x, honest, target=0)


def test_the_users_model_is_untouched_and_a_canonizer_that_does_not_restore_is_reported() -> None:
    zennit = import_zennit()
    from zennit.canonizers import SequentialMergeBatchNorm

    class Leaky(SequentialMergeBatchNorm):
        def remove(self) -> None:  # forgets to restore the BatchNorm parameters
            pass

    model = vgg_like(batchnorm=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rep = dtd.audit(model, _x((1, 3, 12, 12), 10), zennit.composites.EpsilonPlus(canonizers=[Leaky()]), target=0,
                    roots=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert rep.restored
    (canon,) = rep.canonizers
    assert canon.name == "Leaky" and canon.restored is False
    assert rep.verdict != "sound"


@pytest.fixture
def vgg_files(tmp_path):  # type: ignore[no-untyped-def]
    """A VGG-like state dict, the module that builds it and an input batch in tmp_path (the current folder)."""
    import os

    import numpy as np

    torch.save(vgg_like().state_dict(), tmp_path / "vgg.pt")
    torch.save(ResNetLike().double().state_dict(), tmp_path / "resnet.pt")
    (tmp_path / "vggmod.py").write_text(
        "import sys\nsys.path.insert(0, %r)\nfrom test_torch_api import ResNetLike, vgg_like\n"
        "def resnet():\n    return ResNetLike().double()\n" % str(__import__("pathlib").Path(__file__).parent))
    np.save(tmp_path / "x.npy", _x((1, 3, 12, 12), 11).numpy())
    cwd = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(cwd)


def test_audit_cli_writes_json_markdown_and_figure_with_exit_codes(vgg_files, capsys) -> None:  # type: ignore[no-untyped-def]
    import_zennit()
    code = main(["audit", "vgg.pt", "--module", "vggmod:vgg_like", "--explainer", "zennit:EpsilonPlus",
                 "--inputs", "x.npy", "--target", "1", "--no-roots", "--json", "--out", "out"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "sound" and report["target"] == [1]
    assert {p.name for p in (vgg_files / "out").iterdir()} == {"audit.json", "audit.md", "audit.png"}
    assert main(["audit", "vgg.pt", "--module", "vggmod:vgg_like", "--explainer", "zennit:NoSuchThing",
                 "--inputs", "x.npy"]) == 2
    assert "no composite 'NoSuchThing'" in capsys.readouterr().err


def test_audit_cli_runs_captum_on_a_sequential_model_with_flatten(vgg_files, capsys) -> None:  # type: ignore[no-untyped-def]
    """captum's LRP has no default rule for nn.Flatten (and its IdentityRule breaks there): the CLI gives the
    shape-only modules EpsilonRule, and every layer, pools included, agrees with its definition."""
    pytest.importorskip("captum.attr")
    code = main(["audit", "vgg.pt", "--module", "vggmod:vgg_like", "--explainer", "captum:LRP", "--inputs", "x.npy",
                 "--target", "1", "--no-roots", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["verdict"] == "sound", report
    checked = {r["kind"] for r in report["layers"] if r["max_deviation"] is not None}
    assert checked == {"conv", "linear", "maxpool", "avgpool"}
    # the reference models captum's 1e-9 at both pools (norm=1e-9); with the max-pool as winner-takes-all and
    # the average pool unstabilised this was 9.6e-6, with zennit's 1e-6 at the pools 1e-2 on a wider net
    assert report["end_to_end"]["max_deviation"] < 1e-12


def test_a_pool_rule_that_computes_something_else_is_caught_and_per_input_figures_are_each_inputs() -> None:
    """A zennit Norm subclass on the average pool that spreads relevance evenly (ignoring the inputs' shares):
    it conserves, so only the definition check sees it, at the pool; the max-pool (no rule: the gradient,
    winner-takes-all) agrees. The per-input absorbed amounts are those of auditing each input alone."""
    zennit = import_zennit()
    from zennit.composites import LayerMapComposite
    from zennit.types import Activation, AvgPool, Convolution

    class EvenNorm(zennit.rules.Norm):
        def __init__(self) -> None:
            super().__init__()
            self.reducer = lambda inputs, gradients: gradients[0] * (inputs[0] * 0 + 1) * inputs[0].mean()

    x = _x((2, 3, 12, 12), 9)
    good = LayerMapComposite([(Activation, zennit.rules.Pass()), (AvgPool, zennit.rules.Norm()),
                              (Convolution, zennit.rules.ZPlus()), (nn.Linear, zennit.rules.Epsilon())])
    rep = dtd.audit(vgg_like(), x, good, target=2, roots=False)
    pools = {r.kind: r for r in rep.layers if r.kind in ("maxpool", "avgpool")}
    assert pools["avgpool"].rule == "norm:1e-06" and pools["avgpool"].max_deviation < 1e-12
    assert pools["maxpool"].max_deviation < 1e-12 and rep.verdict == "sound"
    for i in range(2):
        alone = dtd.audit(vgg_like(), x[i:i + 1], good, target=2, roots=False)
        for whole, one in zip(rep.layers, alone.layers):
            assert whole.absorbed_per_input[i] == pytest.approx(one.absorbed, rel=1e-12, abs=1e-15)
            if one.max_deviation is not None:
                assert whole.deviation_per_input[i] == pytest.approx(one.max_deviation, abs=1e-15)
    bad = LayerMapComposite([(Activation, zennit.rules.Pass()), (AvgPool, EvenNorm()),
                             (Convolution, zennit.rules.ZPlus()), (nn.Linear, zennit.rules.Epsilon())])
    rep = dtd.audit(vgg_like(), x, bad, target=2, roots=False)
    assert rep.verdict == "deviates" and rep.first_departure == "7", rep.to_markdown()  # the AdaptiveAvgPool2d
    assert next(r for r in rep.layers if r.name == "7").max_deviation > 1e-3


class _Residual(nn.Module):
    """stem - relu - [conv1 - relu - conv2] + skip; with ``copy_input`` conv1 reads a copy of the block input."""

    def __init__(self, copy_input: bool) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.stem, self.relu0 = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()
        self.conv1, self.relu1, self.conv2 = nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1)
        self.relu2, self.pool, self.flatten, self.fc = nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
        self.copy_input = copy_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu0(self.stem(x))
        r = self.conv2(self.relu1(self.conv1(h * 1.0 if self.copy_input else h)))
        return self.fc(self.flatten(self.pool(self.relu2(h + r))))


def test_captum_relevances_are_rescaled_and_a_layer_whose_input_fans_out_is_not_checked() -> None:
    """captum keeps layer relevances divided by f_c(x): the report multiplies them back (the top layer receives
    f_c(x)). Its input hooks sit on tensors: at conv1, whose input also feeds the skip, it records both branches'
    relevance, so conv1's definition is not checked (a naive comparison reports a departure of about 1e-2 there);
    when conv1 reads its own copy it is checked and agrees."""
    captum = pytest.importorskip("captum.attr")
    from captum.attr._utils.lrp_rules import EpsilonRule

    x = _x((2, 3, 6, 6), 4)
    for copy_input in (False, True):
        model = _Residual(copy_input).double().eval()
        model.flatten.rule = EpsilonRule()
        rep = dtd.audit(model, x, captum.LRP(model), target=1, roots=False)
        with torch.no_grad():
            f = model(x)[:, 1]
        top = next(r for r in rep.layers if r.name == "fc")
        assert top.relevance_in == pytest.approx(float(f.sum()), rel=1e-12)
        conv1 = next(r for r in rep.layers if r.name == "conv1")
        if copy_input:
            assert conv1.max_deviation is not None and conv1.max_deviation < 1e-12
        else:
            assert conv1.max_deviation is None and "also feeds add" in conv1.cause
            assert "conv1" in {u["name"] for u in rep.uncovered} and rep.verdict != "sound"
        assert all(r.max_deviation < 1e-12 for r in rep.layers if r.max_deviation is not None)


def test_a_numeric_norm_makes_pools_proportional_with_that_epsilon() -> None:
    """Hand-derived: max-pool of [[0.5, 0.25], [0.1, 0]] then the identity Linear (LRP-0): R = 0.5 at the pool's
    output; with norm=0.1 the winner receives 0.5 * 0.5 / (0.5 + 0.1), with "zennit" all of it (the gradient)."""
    model = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1, 1)).double()
    with torch.no_grad():
        model[2].weight.fill_(1.0)
        model[2].bias.zero_()
    x = torch.tensor([[[[0.5, 0.25], [0.1, 0.0]]]], dtype=torch.float64)
    rule = dtd.rules.LRP0(bias="zennit")
    R = dtd.torch.lrp(model, x, rule, output=0, norm=0.1)
    assert float(R[0, 0, 0, 0]) == pytest.approx(0.5 * 0.5 / 0.6, rel=1e-15) and float(R.abs().sum() - R[0, 0, 0, 0].abs()) == 0
    assert float(dtd.torch.lrp(model, x, rule, output=0, norm="zennit")[0, 0, 0, 0]) == pytest.approx(0.5, rel=1e-15)
    with pytest.raises(InputError, match="norm must be"):
        dtd.torch.lrp(model, x, rule, output=0, norm=-1.0)


def test_audit_cli_names_the_residual_add_with_and_without_canonizers(vgg_files, capsys) -> None:  # type: ignore[no-untyped-def]
    """ResNet-like through the CLI, zennit EpsilonPlusFlat with and without SequentialMergeBatchNorm (no
    BatchNorm to merge: the model output does not move): both leak at the functional add, which doubles the
    relevance it receives, and the table, markdown and figure are written."""
    import_zennit()
    for extra in ([], ["--canonizer", "SequentialMergeBatchNorm"]):
        code = main(["audit", "resnet.pt", "--module", "vggmod:resnet", "--explainer", "zennit:EpsilonPlusFlat",
                     "--inputs", "x.npy", "--no-roots", "--out", "out", *extra])
        text = capsys.readouterr().out
        assert code == 1 and "**Verdict: leaks**" in text
        add = next(line for line in text.splitlines() if line.startswith("| `add` | add |"))
        assert "| leak |" in add and "relevance leaving / entering = 2" in add
        assert all(line.split("|")[7].strip() in ("", "0") or float(line.split("|")[7]) < 1e-12
                   for line in text.splitlines() if line.startswith("| `") and "| conv |" in line)
        assert ("SequentialMergeBatchNorm: output changes by at most 0" in text) == bool(extra)
        assert (vgg_files / "out" / "audit.png").stat().st_size > 10_000


def test_relevance_passed_through_inactive_neurons_is_reported_with_its_amount() -> None:
    """Flat on the Linear layers hands relevance to every input of the last layer, active or not; zennit's Pass
    then carries the inactive neurons' share down (the DTD gate would drop it). The amount reported is that share,
    recomputed here from the ReLU's input and the relevance entering it."""
    zennit = import_zennit()
    from zennit.composites import LayerMapComposite
    from zennit.types import Activation, AvgPool, Convolution

    composite = LayerMapComposite([(Activation, zennit.rules.Pass()), (AvgPool, zennit.rules.Norm()),
                                   (Convolution, zennit.rules.ZPlus()), (nn.Linear, zennit.rules.Flat())])
    model, x = vgg_like(), _x((1, 3, 12, 12), 5)
    rep = dtd.audit(model, x, composite, target=0, roots=False)
    relu = next(r for r in rep.layers if r.name == "10")  # between the two Linear layers
    with torch.no_grad():
        z = model[:10](x)
        flat_in = torch.zeros(16, dtype=torch.float64) + model(x)[0, 0] / 16  # Flat at layer 11: R_j / n_in
    want = float((flat_in * (z[0] <= 0)).sum())
    assert want != 0 and "through inactive neurons" in relu.cause
    assert f"{want:.3g}" in relu.cause
    assert rep.verdict == "sound"  # zennit's convention, not a leak


def _alpha_beta_by_hand(model: nn.Module, x: torch.Tensor, target: list[int], alpha: float, beta: float,
                        swapped: bool) -> torch.Tensor:
    """Alpha-beta LRP for a bias-free Linear-ReLU-Linear net, written out: R_i = sum_j (alpha C+_ji / sum_i C+_ji -
    beta C-_ji / sum_i C-_ji) R_j with C_ji = a_i w_ji (a zero sum drops its term). ``swapped`` is the bug that
    applies alpha to the negative and beta to the positive contributions: it still conserves (alpha - beta = 1)."""
    lin1, lin2 = model[0], model[2]
    a1 = torch.relu(lin1(x))
    out = lin2(a1)
    R = torch.zeros_like(out)
    R[torch.arange(len(x)), target] = out[torch.arange(len(x)), target]
    for lin, a in ((lin2, a1), (lin1, x)):
        C = a[:, None, :] * lin.weight[None]  # (batch, out, in)
        pos, neg = C.clamp(min=0), C.clamp(max=0)
        if swapped:
            pos, neg = -neg, -pos
        sp, sn = pos.sum(-1, keepdim=True), neg.sum(-1, keepdim=True)
        share = alpha * torch.where(sp != 0, pos / torch.where(sp != 0, sp, 1), 0) \
            - beta * torch.where(sn != 0, neg / torch.where(sn != 0, sn, 1), 0)
        R = (share * R[:, :, None]).sum(1)
    return R.detach()


def test_an_alpha_beta_that_applies_beta_to_the_wrong_sign_is_flagged_though_it_conserves() -> None:
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 6, bias=False), nn.ReLU(), nn.Linear(6, 3, bias=False)).double().eval()
    x = _x((3, 4), 12) + 0.1  # positive inputs: every contribution sum of this net has both signs (checked below)
    right = lambda m, xb, t: _alpha_beta_by_hand(m, xb, t, 2.0, 1.0, swapped=False)  # noqa: E731
    wrong = lambda m, xb, t: _alpha_beta_by_hand(m, xb, t, 2.0, 1.0, swapped=True)  # noqa: E731
    with torch.no_grad():
        f = model(x)[:, 1]
    for explain in (right, wrong):  # both conserve exactly (alpha - beta = 1 where both parts are present)
        assert torch.allclose(explain(model, x, [1] * 3).sum(1), f, rtol=1e-12)
    ok = dtd.audit(model, x, right, claims=AlphaBeta(2, 1), target=1, exact=True)
    assert ok.verdict == "sound" and ok.end_to_end["reference"] == "exact", ok.end_to_end
    assert ok.end_to_end["max_deviation"] < 1e-12
    bad = dtd.audit(model, x, wrong, claims=AlphaBeta(2, 1), target=1, exact=True)
    assert bad.verdict == "deviates" and bad.end_to_end["max_deviation"] > 1e-2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_an_audit_on_cuda_gives_the_cpu_audits_findings() -> None:
    zc = import_zennit().composites
    x = _x((2, 3, 12, 12), 2)
    reports = {}
    for device in ("cpu", "cuda"):
        model = vgg_like().to(device)
        reports[device] = dtd.audit(model, x.to(device), zc.EpsilonPlus(), target=1, exact=True, roots=True)
    cpu, gpu = reports["cpu"], reports["cuda"]
    assert gpu.verdict == cpu.verdict == "sound", gpu.to_markdown()
    assert [(r.name, r.kind, r.rule) for r in gpu.layers] == [(r.name, r.kind, r.rule) for r in cpu.layers]
    for a, b in zip(gpu.layers, cpu.layers):
        assert a.relevance_in == pytest.approx(b.relevance_in, rel=1e-9, abs=1e-12)
        assert (a.max_deviation is None) == (b.max_deviation is None)
    assert gpu.end_to_end["reference"] == "exact" and gpu.end_to_end["max_deviation"] < 1e-12
    leak = dtd.audit(ResNetLike().double().eval().cuda(), _x((2, 3, 8, 8), 3).cuda(), zc.EpsilonPlus(), target=0,
                     roots=False)
    assert leak.verdict == "leaks" and [r.name for r in leak.layers if r.finding == "leak"] == ["add"]


def test_first_call_hooks_record_the_first_run_and_change_nothing() -> None:
    """The captum branch reads layer inputs and outputs from captum's first (plain) pass: the hooks keep the first
    call's values (a module called twice), pass arguments unchanged (same output and gradient as without them),
    and keep a layer's output as it came out, also when a ReLU(inplace=True) overwrites the tensor afterwards."""
    from dtd_formal.audit.capture import Captured, install_first_call_hooks

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(3)
            self.conv, self.relu, self.lin = nn.Conv2d(1, 2, 2), nn.ReLU(inplace=True), nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(self.lin(torch.flatten(self.relu(self.conv(x)), 1)))

    model = Twice().double()
    x = _x((2, 1, 3, 3), 5) - 0.5
    xg = x.clone().requires_grad_(True)
    plain = model(xg)
    (g_plain,) = torch.autograd.grad(plain.sum(), xg)
    cap = Captured()
    handles = install_first_call_hooks(model, cap)
    xg = x.clone().requires_grad_(True)
    hooked = model(xg)
    (g_hooked,) = torch.autograd.grad(hooked.sum(), xg)
    for h in handles:
        h.remove()
    assert torch.equal(plain, hooked) and torch.equal(g_plain, g_hooked)
    assert cap.calls == {"conv": 1, "relu": 1, "lin": 2} and cap.order == ["conv", "relu", "lin"]
    with torch.no_grad():
        h1 = torch.flatten(torch.relu(model.conv(x)), 1)
        first_out = model.lin(h1)
    assert torch.equal(cap.inputs["lin"][0], h1) and torch.equal(cap.output("lin"), first_out)  # not the 2nd call
    with torch.no_grad():  # a copy: the in-place ReLU after the convolution does not reach it
        assert torch.equal(cap.output("conv"), model.conv(x)) and bool((cap.output("conv") < 0).any())
    assert torch.equal(cap.params["lin"][0], model.lin.weight)
    # weights changed after the input was recorded and before the layer ran: its output is not that layer's product
    def doubled(m: nn.Module, args: tuple) -> None:
        m.weight.data.mul_(2.0)

    net = nn.Sequential(nn.Linear(3, 2)).double()
    cap = Captured()
    handles = install_first_call_hooks(net, cap)
    handles.append(net[0].register_forward_pre_hook(doubled))
    with torch.no_grad():
        net(torch.ones(1, 3, dtype=torch.float64))
    for h in handles:
        h.remove()
    assert "0" in cap.outputs and cap.output("0") is None


def test_a_layer_run_with_other_weights_in_captums_plain_pass_is_judged_by_the_models_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A captum that changed a layer's weights before its first pass (simulated: its weight-changing pass starts by
    scaling the convolution's weights) explains another model, consistently: recording the weights the layer ran
    with and its output in that run would let the definition agree with it (deviation ~1e-16). The audit takes
    the model's own weights and reports the layer's departure."""
    captum = pytest.importorskip("captum.attr")
    from captum.attr._core.lrp import LRP
    from captum.attr._utils.lrp_rules import EpsilonRule

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3)).double().eval()
    model[2].rule = EpsilonRule()
    x = _x((2, 3, 6, 6), 8)
    assert dtd.audit(model, x, captum.LRP(model), target=1, roots=False).verdict == "sound"
    original = LRP._compute_output_and_change_weights

    def scaled_first(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        for layer in self.layers:
            if isinstance(layer, nn.Conv2d):
                layer.weight.data.mul_(1.5)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LRP, "_compute_output_and_change_weights", scaled_first)
    rep = dtd.audit(model, x, captum.LRP(model), target=1, roots=False)
    conv = next(r for r in rep.layers if r.name == "0")
    assert rep.verdict == "deviates" and conv.max_deviation > 1e-3 and "departs" in conv.cause
