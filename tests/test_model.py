"""Tests of the pure-torch PRE-Net model package."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import pywt
import torch
from safetensors import safe_open
from torch import nn

from satpy_prenet.bundle import read_header
from satpy_prenet.model import (
    MultimodalTeacher,
    PrecipitationRetriever,
    PRENet,
    PRENetConfig,
    TeacherConfig,
    coordinated_mask,
    fold_batch_norms,
    haar_dwt2d,
    preset,
    teacher_preset,
)
from satpy_prenet.model import comwe as comwe_module
from satpy_prenet.model.comwe import CoMWE, split_visible

BANDS = ["IR3.72H", "IR3.72L", "WV6.25", "WV7.10", "IR8.50", "IR10.8", "IR12.0", "IR13.5"]


def count(module: nn.Module) -> int:
    """Return the number of parameters of `module`."""
    return sum(parameter.numel() for parameter in module.parameters())


@pytest.fixture
def small_config() -> PRENetConfig:
    """Small classifier configuration."""
    return preset("small", in_channels=8, out_channels=2)


@pytest.fixture
def student(small_config: PRENetConfig) -> PRENet:
    """Small classifier with fixed weights."""
    torch.manual_seed(0)
    return PRENet(small_config)


@pytest.fixture
def x() -> torch.Tensor:
    """Normalised input batch of two 64 x 64 tiles."""
    return torch.randn(2, 8, 64, 64, generator=torch.Generator().manual_seed(1))


def test_haar_dwt_matches_pywavelets():
    """LL, LH, HL, HH are pywt's cA, cV, cH, cD, values and signs."""
    data = np.random.default_rng(0).normal(size=(2, 3, 8, 10))
    ll, lh, hl, hh = haar_dwt2d(torch.from_numpy(data))
    c_a, (c_h, c_v, c_d) = pywt.dwt2(data, "haar")
    for ours, theirs in [(ll, c_a), (lh, c_v), (hl, c_h), (hh, c_d)]:
        np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-12)


def test_haar_dwt_is_orthonormal_and_differentiable_in_bfloat16():
    """Band energy equals input energy, so the gradient of the summed squares is 2 x; bfloat16 stays bfloat16."""
    x = torch.randn(1, 2, 4, 6, dtype=torch.bfloat16, requires_grad=True)
    bands = haar_dwt2d(x)
    assert all(band.dtype == torch.bfloat16 for band in bands)
    sum(band.float().pow(2).sum() for band in bands).backward()
    torch.testing.assert_close(x.grad, 2 * x.detach(), rtol=2e-2, atol=2e-2)


def test_haar_dwt_rejects_odd_size():
    """An odd-sized map cannot be halved."""
    with pytest.raises(ValueError, match="even"):
        haar_dwt2d(torch.zeros(1, 1, 7, 8))


@pytest.mark.parametrize("out_channels", [2, 1])
def test_paper_student_has_48m_parameters(out_channels):
    """The paper student has 48 M parameters within 2 % (the reference release has about 47.9 M)."""
    with torch.device("meta"):
        model = PRENet(preset("paper", in_channels=8, out_channels=out_channels))
    assert 47.04e6 <= count(model) <= 48.96e6


def test_paper_teacher_has_31_4m_parameters():
    """The paper teacher has about 31.4 M parameters."""
    with torch.device("meta"):
        model = MultimodalTeacher(teacher_preset("paper", out_channels=2))
    assert count(model) == pytest.approx(31.4e6, rel=0.02)


def test_paper_size_multiple():
    """Paper tiles must be multiples of 16 pixels (four down-samplings, 16-pixel mask cells)."""
    assert preset("paper", in_channels=8, out_channels=2).size_multiple == 16


@pytest.mark.parametrize("training", [True, False])
def test_student_output_shapes(student, training):
    """Output at input resolution; features and reconstructions at strides 2, 4, 8 with the stage widths."""
    student.train(training)
    output = student(torch.randn(2, 8, 32, 48))
    assert output.out.shape == (2, 2, 32, 48)
    widths = student.config.widths
    for level, (feature, reconstruction) in enumerate(zip(output.features, output.reconstructions, strict=True), 1):
        expected = (2, widths[level], 32 // 2**level, 48 // 2**level)
        assert feature.shape == expected
        assert reconstruction.shape == expected


def assert_eval_deterministic(student, x):
    """Evaluation mode gives the same outputs under two random seeds."""
    student.eval()
    with torch.no_grad():
        torch.manual_seed(0)
        first = student(x)
        torch.manual_seed(1)
        second = student(x)
    assert torch.equal(first.out, second.out)
    assert all(torch.equal(a, b) for a, b in zip(first.reconstructions, second.reconstructions, strict=True))


def test_eval_mode_is_deterministic(student, x):
    """Evaluation mode draws nothing at random."""
    assert_eval_deterministic(student, x)


def test_training_mode_masks_at_random(student, x):
    """Training mode draws a mask per forward: outputs follow the random seed."""
    student.train()
    outputs = []
    for seed in [0, 0, 1]:
        torch.manual_seed(seed)
        with torch.no_grad():
            outputs.append(student(x).out)
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.allclose(outputs[0], outputs[2])


def test_coordinated_mask_hides_a_quarter_of_whole_cells():
    """The mask hides round(ratio * cells) cells of 16 x 16 pixels per sample."""
    torch.manual_seed(0)
    keep = coordinated_mask(4, 128, 256, cell=16, ratio=0.25)
    assert keep.shape == (4, 1, 128, 256)
    assert set(keep.unique().tolist()) == {0.0, 1.0}
    assert (1 - keep.mean(dim=(1, 2, 3))).tolist() == pytest.approx([0.25] * 4)
    cells = keep.unfold(2, 16, 16).unfold(3, 16, 16)
    assert torch.equal(cells.amax(dim=(-2, -1)), cells.amin(dim=(-2, -1)))


def test_split_visible_parts_are_disjoint_and_cover_the_visible_tokens():
    """Every visible token is in exactly one of the n near-equal parts; hidden tokens in none."""
    torch.manual_seed(0)
    keep = torch.rand(3, 100) > 0.25
    views = split_visible(keep, 3)
    assert views.shape == (3, 3, 100)
    assert torch.equal(views.sum(dim=0), keep.long())
    sizes = views.sum(dim=2)
    assert (sizes.amax(dim=0) - sizes.amin(dim=0)).max() <= 1


def test_split_reconstruction_of_identical_views_is_the_plain_reconstruction(small_config, monkeypatch):
    """The learnable weights are normalised: n identical views give the single-pass reconstruction."""
    torch.manual_seed(0)
    module = CoMWE(in_channels=16, channels=32, config=small_config).eval()
    nn.init.normal_(module.split_logits)
    stage_input, features = torch.randn(2, 16, 32, 32), torch.randn(2, 32, 16, 16)
    monkeypatch.setattr(comwe_module, "split_visible", lambda keep, parts: keep.unsqueeze(0).expand(parts, -1, -1))
    with torch.no_grad():
        plain = module(stage_input, features)
        split = module(stage_input, features, keep=torch.ones(2, 1, 16, 16))
    torch.testing.assert_close(split, plain, rtol=1e-4, atol=1e-5)


def test_external_mask_changes_the_output(student, x):
    """A Self-MaskTune mask of ones changes nothing; zeros over half of the tile change the output."""
    student.eval()
    mask = torch.ones(2, 1, 64, 64)
    with torch.no_grad():
        plain = student(x).out
        ones = student(x, mask).out
        mask[..., :32] = 0
        masked = student(x, mask).out
    torch.testing.assert_close(ones, plain)
    assert not torch.allclose(masked, plain)


def _training_loss(output, targets) -> torch.Tensor:
    """Task, feature and reconstruction terms touching every output."""
    label, teacher_features = targets
    loss = nn.functional.cross_entropy(output.out, label)
    for feature, reconstruction, teacher in zip(output.features, output.reconstructions, teacher_features, strict=True):
        loss = loss + (feature - teacher).pow(2).mean() + (reconstruction - teacher).pow(2).mean()
    return loss


def test_training_step_reaches_every_parameter(student, x):
    """One optimiser step in training mode: every parameter, DAWE and mask tokens included, gets a gradient."""
    torch.manual_seed(0)
    student.train()
    label = torch.randint(0, 2, (2, 64, 64))
    teachers = [torch.randn(2, w, 64 // 2**i, 64 // 2**i) for i, w in enumerate(student.config.widths[1:4], 1)]
    optimiser = torch.optim.RMSprop(student.parameters(), lr=1e-4)
    loss = _training_loss(student(x), (label, teachers))
    loss.backward()
    missing = [name for name, p in student.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing
    optimiser.step()
    assert torch.isfinite(loss)


def test_dawe_is_in_the_graph_in_evaluation_mode(student, x):
    """DAWE feeds the reconstructions at all three scales at inference too."""
    student.eval()
    output = student(x)
    sum(reconstruction.sum() for reconstruction in output.reconstructions).backward()
    for module in student.comwe:
        assert module.dawe.reduce.weight.grad.abs().sum() > 0


def test_wrong_input_size_raises(student):
    """Inputs must be multiples of the size multiple."""
    with pytest.raises(ValueError, match="multiples of 16"):
        student(torch.zeros(1, 8, 40, 64))
    teacher = MultimodalTeacher(teacher_preset("small", out_channels=1))
    with pytest.raises(ValueError, match="multiples of 16"):
        teacher(
            torch.zeros(1, 8, 24, 32),
            torch.zeros(1, 13, 24, 32),
            torch.zeros(1, 176, 24, 32),
            torch.zeros(1, 3, 24, 32),
        )


def test_student_and_teacher_features_agree(student, x):
    """Student and teacher features have equal shapes at strides 2, 4 and 8."""
    teacher = MultimodalTeacher(teacher_preset("small", out_channels=2)).eval()
    student.eval()
    with torch.no_grad():
        ours = student(x).features
        theirs = teacher(x, torch.randn(2, 13, 64, 64), torch.randn(2, 176, 64, 64), torch.randn(2, 3, 64, 64))
    assert theirs.out.shape == (2, 2, 64, 64)
    assert [f.shape for f in ours] == [f.shape for f in theirs.features]
    paper = preset("paper", in_channels=8, out_channels=2)
    assert paper.widths == teacher_preset("paper", out_channels=2).widths


def test_lora_targets_are_the_autoencoder_linears(student):
    """Modules named qkv, proj, fc1, fc2 are linear layers, and all of them sit in the autoencoders."""
    names = {"qkv", "proj", "fc1", "fc2"}
    targets = [(name, m) for name, m in student.named_modules() if name.rsplit(".", 1)[-1] in names]
    assert len(targets) == 3 * student.config.ae_depth * 4
    assert all(isinstance(m, nn.Linear) and ".autoencoder.encoder." in name for name, m in targets)


ABLATIONS = [(True, True), (True, False), (False, True), (False, False)]


def _ablated(config: PRENetConfig, rmkd: bool, dawe: bool) -> PRENet:
    """Return a student with the given ablation switches and fixed weights."""
    torch.manual_seed(0)
    return PRENet(replace(config, rmkd=rmkd, dawe=dawe))


@pytest.mark.parametrize(("rmkd", "dawe"), ABLATIONS)
def test_ablated_student_trains_and_is_deterministic(small_config, x, rmkd, dawe):
    """Every (RMKD, DAWE) combination trains, every parameter gets a gradient, evaluation is deterministic."""
    student = _ablated(small_config, rmkd, dawe).train()
    output = student(x)
    assert output.out.shape == (2, 2, 64, 64)
    assert len(output.features) == 3
    assert len(output.reconstructions) == (3 if rmkd else 0)
    loss = nn.functional.cross_entropy(output.out, torch.randint(0, 2, (2, 64, 64)))
    loss = loss + sum(tensor.pow(2).mean() for tensor in (*output.features, *output.reconstructions))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert_eval_deterministic(student, x)


@pytest.mark.parametrize(("rmkd", "dawe"), ABLATIONS[1:])
def test_ablations_remove_their_parameters(small_config, rmkd, dawe):
    """A part switched off leaves no parameters behind; without both parts there is no CoMWE."""
    student = _ablated(small_config, rmkd, dawe)
    names = [name for name, _ in student.named_parameters()]
    assert count(student) < count(PRENet(small_config))
    assert any(".autoencoder." in name or name.endswith(".split_logits") for name in names) == rmkd
    assert any(".dawe." in name for name in names) == dawe
    assert any(name.startswith("comwe.") for name in names) == (rmkd or dawe)


@pytest.mark.parametrize("dawe", [True, False])
def test_student_without_rmkd_masks_nothing(small_config, x, dawe):
    """Without RMKD training draws no mask, and an external mask has no autoencoder to act on."""
    student = _ablated(small_config, False, dawe).train()
    with torch.no_grad():
        torch.manual_seed(0)
        first = student(x).out
        torch.manual_seed(1)
        second = student(x).out
        masked = student(x, torch.zeros(2, 1, 64, 64)).out
    assert torch.equal(first, second)
    assert torch.equal(first, masked)


def test_single_split_trains_on_one_view(small_config, x):
    """n_splits = 1 (MKD-like): one view of all visible tokens; everything but its constant weight learns."""
    keep = torch.rand(2, 50) > 0.25
    assert torch.equal(split_visible(keep, 1)[0], keep)
    student = PRENet(replace(small_config, n_splits=1)).train()
    output = student(x)
    sum(tensor.sum() for tensor in (output.out, *output.reconstructions)).backward()
    missing = [name for name, p in student.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == [f"comwe.{i}.split_logits" for i in range(3)]


def test_default_state_dict_names_match_the_demo_bundle(demo_bundle):
    """The default switches keep the parameter names that existing bundles and checkpoints hold."""
    config = read_header(demo_bundle).model_config
    student = PRENetConfig.from_dict(config["student"])
    assert student.rmkd and student.dawe
    model = PrecipitationRetriever.from_config({**config, "student": {**config["student"], "rmkd": True, "dawe": True}})
    with safe_open(str(demo_bundle), framework="pt") as tensors:
        assert sorted(model.state_dict()) == sorted(tensors.keys())


def test_config_round_trip(small_config):
    """Configurations survive JSON; unknown keys and inconsistent sizes are refused."""
    assert PRENetConfig.from_dict(json.loads(json.dumps(small_config.to_dict()))) == small_config
    teacher = TeacherConfig(out_channels=1, pr_channels=10)
    assert TeacherConfig.from_dict(json.loads(json.dumps(teacher.to_dict()))) == teacher
    with pytest.raises(ValueError, match="Unknown PRENetConfig key"):
        PRENetConfig.from_dict({**small_config.to_dict(), "depth": 3})
    with pytest.raises(ValueError, match="widths"):
        PRENetConfig(in_channels=8, out_channels=2, widths=(16, 32))
    with pytest.raises(ValueError, match="Unknown preset"):
        preset("huge", in_channels=8, out_channels=2)


@pytest.fixture
def retriever(small_config) -> PrecipitationRetriever:
    """Small retriever in evaluation mode with a realistic normalisation."""
    torch.manual_seed(0)
    model = PrecipitationRetriever(
        student=small_config, bands=BANDS, mean=[260.0] * 8, std=[20.0] * 8, probability_threshold=0.5
    )
    return model.eval()


def test_retriever_outputs(retriever):
    """Probability in [0, 1]; rate non-negative and zero below the threshold; NaN inputs give finite outputs."""
    bt = 260 + 20 * torch.randn(2, 8, 64, 64)
    bt[0, :, :10] = float("nan")
    bt[1, 3] = float("nan")
    with torch.no_grad():
        probability, _ = retriever(bt)
        retriever.probability_threshold = probability.median().item()
        probability, rate = retriever(bt)
    assert probability.shape == rate.shape == (2, 64, 64)
    assert torch.isfinite(probability).all()
    assert torch.isfinite(rate).all()
    assert ((probability >= 0) & (probability <= 1)).all()
    assert (rate >= 0).all()
    assert (rate[probability < retriever.probability_threshold] == 0).all()
    assert (probability < retriever.probability_threshold).any()


def test_retriever_runs_the_regressor_only_on_raining_samples(retriever):
    """Samples without a pixel at the threshold skip the regressor; the outputs are those of running it on all."""
    bt = 260 + 20 * torch.randn(4, 8, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        probability, _ = retriever(bt)
        peaks = probability.flatten(1).amax(dim=1)
        retriever.probability_threshold = peaks.sort().values[1:3].mean().item()  # two samples rain, two do not
        sizes = []
        hook = retriever.regressor.register_forward_hook(lambda module, args, output: sizes.append(len(args[0])))
        probability, rate = retriever(bt)
        hook.remove()
        every_rate = retriever.regressor(retriever.normalise(bt)).out[:, 0].clamp_min(0.0)
    raining = probability >= retriever.probability_threshold
    assert sizes == [int(raining.flatten(1).any(dim=1).sum())] == [2]
    torch.testing.assert_close(rate, torch.where(raining, every_rate, torch.zeros_like(every_rate)))
    assert (rate > 0).any()


def test_folded_batch_norms_give_the_same_outputs(retriever):
    """Folding leaves no batch norm and changes the outputs by float32 rounding only; it refuses training mode."""
    bt = 260 + 20 * torch.randn(2, 8, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        retriever.probability_threshold = 0.0
        expected = retriever(bt)
        norms = sum(isinstance(module, nn.BatchNorm2d) for module in retriever.modules())
        assert fold_batch_norms(retriever) == norms > 0
        folded = retriever(bt)
    assert not any(isinstance(module, nn.BatchNorm2d) for module in retriever.modules())
    for ours, theirs in zip(folded, expected, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(retriever.train())


def test_retriever_rebuilds_from_config_and_state_dict(retriever):
    """A JSON configuration and the state dict (normalisation included) rebuild the same retriever."""
    retriever.probability_threshold = 0.3
    rebuilt = PrecipitationRetriever.from_config(json.loads(json.dumps(retriever.config_dict())))
    rebuilt.load_state_dict(retriever.state_dict())
    rebuilt.eval()
    bt = 260 + 20 * torch.randn(1, 8, 32, 32)
    with torch.no_grad():
        for ours, theirs in zip(retriever(bt), rebuilt(bt), strict=True):
            torch.testing.assert_close(ours, theirs)
    assert rebuilt.bands == tuple(BANDS)
    assert rebuilt.probability_threshold == 0.3
    with pytest.raises(ValueError, match="multiples of 16"):
        rebuilt(torch.zeros(1, 8, 32, 20))


def test_retriever_rejects_inconsistent_bands(small_config):
    """The band list must match the input channels."""
    with pytest.raises(ValueError, match="number of bands"):
        PrecipitationRetriever(student=small_config, bands=BANDS[:6])
