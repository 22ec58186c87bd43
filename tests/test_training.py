"""Training stages on tiny real Zarr stores: losses, MaskTune, LoRA, resume, export round trip, errors."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from click.testing import CliRunner

from satpy_prenet.channels import PAPER_BANDS
from satpy_prenet.data.stores import FULL_IPR, SWATH_MPR, StoreError, append_tiles, store_path
from satpy_prenet.training.config import ConfigError, StageConfig, TrainingConfig, load_config
from satpy_prenet.training.trainer import PlainTask

torch.set_num_threads(2)

REPO = Path(__file__).resolve().parents[1]
ALONG, ACROSS, DISC = 32, 49, 32
COUNTS = {"train": 8, "validation": 4, "test": 4}


def _cloud(rng, n, height, width):
    """Smooth cloudiness in [0, 1]: coarse random cells, upsampled."""
    coarse = rng.random((n, math.ceil(height / 8), math.ceil(width / 8)))
    return np.kron(coarse, np.ones((1, 8, 8)))[:, :height, :width]


def _rain(rng, cloud, labelled=0.95):
    """Rain where the cloudiness passes 0.55; a random ``1 - labelled`` of the pixels without a label."""
    label = np.where(cloud > 0.55, 25.0 * (cloud - 0.55), 0.0)
    label[rng.random(label.shape) < 1.0 - labelled] = np.nan
    return label.astype(np.float32)


def _ir(rng, cloud, noise=1.0):
    """Infrared bands, colder where cloudy, each with independent Gaussian noise of ``noise`` K."""
    bands = 290.0 - 70.0 * cloud[:, None] + rng.normal(0, noise, (cloud.shape[0], len(PAPER_BANDS), *cloud.shape[1:]))
    return bands.astype(np.float32)


def swath_tiles(rng, split, n, *, ir_noise=1.0, labelled=0.95):
    """Swath-MPR tiles: microwave and radar see the cloud field cleanly, the infrared through ``ir_noise`` K."""
    cloud = _cloud(rng, n, ALONG, ACROSS)
    dims = ("tile", "along", "across")
    pmw = 280.0 - 60.0 * cloud[:, None] + rng.normal(0, 2.0, (n, 13, ALONG, ACROSS))
    pr = np.maximum(-10.0, -15.0 + 60.0 * cloud[:, None] * np.linspace(0.2, 1.0, 176)[None, :, None, None])
    lat, lon = np.meshgrid(np.linspace(20, 30, ALONG), np.linspace(100, 110, ACROSS), indexing="ij")
    geo = np.stack([rng.random((n, ALONG, ACROSS)) * 1000, np.broadcast_to(lat, (n, ALONG, ACROSS)),
                    np.broadcast_to(lon, (n, ALONG, ACROSS))], axis=1)
    ir = _ir(rng, cloud, ir_noise)
    ir[0, 2, :4, :4] = np.nan  # missing input values become the normalised mean
    return xr.Dataset(
        {"ir": (("tile", "ir_band", "along", "across"), ir),
         "pmw": (("tile", "pmw_channel", "along", "across"), pmw.astype(np.float32)),
         "pr": (("tile", "range_bin", "along", "across"), pr.astype(np.float32)),
         "geo": (("tile", "geo_channel", "along", "across"), geo.astype(np.float32)),
         "label": (dims, _rain(rng, cloud, labelled))},
        coords={"ir_band": list(PAPER_BANDS), "pmw_channel": [f"ch{i}" for i in range(13)],
                "range_bin": np.arange(1, 177), "geo_channel": ["elevation", "latitude", "longitude"],
                "sample_id": ("tile", [f"swath-{split}-{i:03d}" for i in range(n)]),
                "time": ("tile", [np.datetime64("2026-07-15T00:00") + np.timedelta64(i, "h") for i in range(n)])})


def disc_tiles(rng, split, n):
    cloud = _cloud(rng, n, DISC, DISC)
    ir = _ir(rng, cloud)
    label = _rain(rng, cloud)
    ir[-1, :, :, :8] = np.nan  # space on the left of the last tile
    label[-1, :, :8] = np.nan
    return xr.Dataset(
        {"ir": (("tile", "ir_band", "y", "x"), ir), "label": (("tile", "y", "x"), label)},
        coords={"ir_band": list(PAPER_BANDS), "sample_id": ("tile", [f"disc-{split}-{i:03d}" for i in range(n)]),
                "line": ("tile", np.arange(n) * DISC), "column": ("tile", np.zeros(n, int))})


def write_stores(root: Path, seed: int = 0, *, counts: dict[str, int] = COUNTS, ir_noise: float = 1.0,
                 labelled: float = 0.95) -> Path:
    """Tiny Swath-MPR and Full-IPR stores following docs/training-data.md, marked simulated.

    ``ir_noise`` applies to every Swath-MPR split, ``labelled`` (the fraction of labelled pixels) to its training
    split only; the Full-IPR store keeps 1 K of noise and 95 % of its labels.
    """
    rng = np.random.default_rng(seed)
    for split, count in counts.items():
        attrs = {"split": split, "ir_wavelengths_um": [3.72, 3.72, 6.25, 7.1, 8.5, 10.8, 12.0, 13.5],
                 "simulated": True}
        swath = swath_tiles(rng, split, count, ir_noise=ir_noise, labelled=labelled if split == "train" else 0.95)
        append_tiles(store_path(root, SWATH_MPR, split), swath, kind=SWATH_MPR, attrs=attrs)
        append_tiles(store_path(root, FULL_IPR, split), disc_tiles(rng, split, count), kind=FULL_IPR, attrs=attrs)
    return root


def tiny_config(**stage_changes) -> TrainingConfig:
    """small preset, one epoch of 2 batches of 4 per stage (AdamW, no schedule)."""
    stage = StageConfig(epochs=1, batch_size=4, optimizer="adamw", lr=1e-3, lr_halving_epochs=0,
                        max_steps_per_epoch=2, warmup_epochs=1, rho=0.5, seed=0)
    return TrainingConfig(teacher=stage, distill=stage, adapt=dataclasses.replace(stage, **stage_changes))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_stores(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="module")
def pipeline(data, tmp_path_factory):
    """teacher -> distill -> adapt -> export for both heads, one short epoch each."""
    from satpy_prenet.training.stages import PIPELINE, run_stage

    workdir = tmp_path_factory.mktemp("work")
    config = tiny_config()
    results = {name: run_stage(name, config, workdir, data=data, device="cpu") for name in PIPELINE}
    return workdir, config, results


# --- configuration -------------------------------------------------------------------------------------------


def test_shipped_configs_load():
    from satpy_prenet.training.builder import BuildConfig

    paper = load_config(REPO / "etc/training/paper.yaml")
    assert paper.model.preset == "paper" and paper.distill.optimizer == "rmsprop"
    assert (paper.distill.lr, paper.distill.lr_halving_epochs, paper.distill.batch_size) == (1e-6, 30, 32)
    assert (paper.distill.epochs, paper.adapt.epochs) == (200, 100)
    assert paper.model.bands == PAPER_BANDS
    assert BuildConfig.from_dict(paper.build).disc_tile_size == 256
    small = load_config(REPO / "etc/training/small.yaml")
    assert small.model.preset == "small" and BuildConfig.from_dict(small.build).swath_tile_scans == 128


def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("distill:\n  lambda: 0.3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: distill: unknown key\(s\) lambda"):
        load_config(path)
    path.write_text("optimiser: {}\n")
    with pytest.raises(ConfigError, match="unknown section"):
        load_config(path)
    path.write_text("adapt: {lr: 1e-3, rho: 1}\n")
    assert load_config(path).adapt.lr == 1e-3 and load_config(path).adapt.rho == 1.0
    path.write_text("adapt: {lr: fast}\n")
    with pytest.raises(ConfigError, match="adapt: lr: 'fast' is not a number"):
        load_config(path)
    path.write_text("adapt: {masktune: sometimes}\n")
    with pytest.raises(ConfigError, match="masktune must be one of"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(("section", "message"), [
    ("build: {swath_tiles: 3}", r"bad.yaml: build: unknown build setting\(s\) \['swath_tiles'\]"),
    ("simulate: {seed: 1, start: 2026-07-15, end: 2026-07-16}", "bad.yaml: simulate: needs exactly the keys"),
    ("simulate: {seed: 1, start: '2026-07-15', end: yesterday, platform: FY-4A}",
     "bad.yaml: simulate: 'yesterday' is not an ISO date"),
    ("simulate: {seed: 1, start: '2026-07-16', end: '2026-07-15', platform: FY-4A}", "is not after start"),
    ("simulate: {seed: one, start: '2026-07-15', end: '2026-07-16', platform: FY-4A}", "seed must be an integer"),
])
def test_config_checks_the_build_and_simulate_sections_at_load(tmp_path, section, message):
    path = tmp_path / "bad.yaml"
    path.write_text(section + "\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


# --- losses ---------------------------------------------------------------------------------------------------


def test_classifier_loss_ignores_missing_labels_and_is_inclusive():
    from satpy_prenet.training.losses import task_loss

    logits = torch.tensor([[[[2.0, 0.0, 1.0]]], [[[0.0, 1.0, 3.0]]]]).permute(1, 0, 2, 3)  # (1, 2, 1, 3)
    label = torch.tensor([[[0.1, float("nan"), 0.0999]]])
    loss, loss_map = task_loss("classifier", logits, label)
    # pixel 0: rain (0.1 inclusive) -> -log softmax([2, 0])[1]; pixel 2: no rain -> -log softmax([1, 3])[0]
    expected = [math.log(1 + math.exp(2.0)), math.log(1 + math.exp(2.0))]
    assert loss_map[0, 0, 1] == 0
    assert loss.item() == pytest.approx(sum(expected) / 2, rel=1e-6)


def test_regressor_loss_counts_rain_or_valid_pixels():
    from satpy_prenet.training.losses import task_loss

    output = torch.tensor([[[[1.0, 2.0, 3.0, 4.0]]]])
    label = torch.tensor([[[0.5, 0.0, float("nan"), 2.0]]])
    rain, _ = task_loss("regressor", output, label, "rain")
    valid, loss_map = task_loss("regressor", output, label, "valid")
    assert rain.item() == pytest.approx((0.25 + 4.0) / 2)
    assert valid.item() == pytest.approx((0.25 + 4.0 + 4.0) / 3)
    assert loss_map[0, 0, 2] == 0


def test_feature_kd_matches_hand_computation():
    from satpy_prenet.training.losses import feature_kd, reconstruction_loss

    gen = torch.Generator().manual_seed(0)
    student = [torch.randn(2, c, s, s, generator=gen) for c, s in ((4, 8), (6, 4), (8, 2))]
    teacher = [torch.randn(2, c, s, s, generator=gen) for c, s in ((4, 8), (6, 4), (8, 2))]
    temperature, weights = 3.0, (1.0, 2.0, 4.0)
    expected = 0.0
    for weight, mine, theirs in zip(weights, student, teacher, strict=True):
        p = np.exp(theirs.numpy() / temperature)
        p /= p.sum(axis=1, keepdims=True)
        q = np.exp(mine.numpy() / temperature)
        q /= q.sum(axis=1, keepdims=True)
        element_mean = (p * np.log(p / q)).mean()  # the reference's normalisation
        expected += weight * temperature**2 * element_mean
    value = feature_kd(student, teacher, temperature=temperature, weights=weights)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    assert feature_kd(teacher, teacher, temperature=3.0, weights=weights).item() == pytest.approx(0.0, abs=1e-6)
    rec = reconstruction_loss(student, teacher)
    expected_rec = sum(((a - b) ** 2).mean().item() for a, b in zip(student, teacher, strict=True))
    assert rec.item() == pytest.approx(expected_rec, rel=1e-6)
    with pytest.raises(ValueError, match="feature shapes differ at stride 4"):
        feature_kd(student, [teacher[0], teacher[0], teacher[2]], temperature=3.0, weights=weights)


def test_response_kd_matches_hand_computation_and_counts_only_the_footprint():
    from satpy_prenet.training.losses import response_kd

    gen = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(2, 2, 4, 4, generator=gen), torch.randn(2, 2, 4, 4, generator=gen)
    temperature = 3.0
    p = np.exp(teacher.numpy() / temperature)
    p /= p.sum(axis=1, keepdims=True)
    q = np.exp(student.numpy() / temperature)
    q /= q.sum(axis=1, keepdims=True)
    per_pixel = temperature**2 * (p * np.log(p / q)).sum(axis=1)
    footprint = torch.ones(2, 4, 4)
    footprint[1, :, :2] = 0  # padding
    value = response_kd("classifier", student, teacher, temperature=temperature, footprint=footprint)
    assert value.item() == pytest.approx(per_pixel[footprint.numpy() > 0].mean(), rel=1e-5)
    assert response_kd("classifier", teacher, teacher, temperature=temperature).item() == pytest.approx(0, abs=1e-6)
    rates, teacher_rates = student[:, :1], teacher[:, :1]
    expected = ((rates - teacher_rates)[:, 0] ** 2).mean().item()
    assert response_kd("regressor", rates, teacher_rates, temperature=temperature).item() == pytest.approx(expected)


def test_distill_refuses_teacher_of_other_widths():
    from satpy_prenet.model import MultimodalTeacher, teacher_preset
    from satpy_prenet.training.config import ModelSection
    from satpy_prenet.training.distill import DistillTask

    teacher = MultimodalTeacher(teacher_preset("paper", out_channels=2))
    with pytest.raises(ValueError, match="feature widths"):
        DistillTask("classifier", ModelSection(preset="small"), StageConfig(), teacher)


# --- Self-MaskTune -----------------------------------------------------------------------------------------------


def test_self_mask_rules_cells_and_schedule():
    from satpy_prenet.training.masktune import MaskTune, self_masks

    loss = torch.tensor([[[0.0, 1.0], [4.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]]])
    counted = torch.ones_like(loss, dtype=torch.bool)
    assert self_masks(loss, counted, rho=0.5, rule="max")[0].tolist() == [[False, False], [True, True]]  # P_max 2
    assert self_masks(loss, counted, rho=0.25, rule="quantile")[0].tolist() == [[False, True], [True, True]]
    assert self_masks(loss, counted, rho=0.5, rule="quantile")[1].all()  # no loss anywhere: nothing to single out
    unlabelled = counted.clone()
    unlabelled[0, 1, 0] = False  # the cell of loss 4 has no label: it carries no loss and stays visible
    assert self_masks(loss, unlabelled, rho=0.5, rule="max")[0].tolist() == [[False, True], [True, True]]
    cells = self_masks(torch.arange(16.0).reshape(1, 4, 4), torch.ones(1, 4, 4, dtype=torch.bool), rho=0.5,
                       rule="quantile", cell=2)  # cell means 2.5, 4.5, 10.5, 12.5
    assert cells.tolist() == [[[False, False], [True, True]]]
    tune = MaskTune("self", warmup_epochs=2, rho=0.5, rule="max")
    tune.record(["a", "b"], loss, counted)
    tune.end_epoch()
    device = torch.device("cpu")
    assert tune.batch_mask(["a"], (2, 2), 1, device).all()  # warm-up: no mask
    assert tune.batch_mask(["a", "b", "new"], (2, 2), 2, device)[:, 0].tolist() == [
        [[0, 0], [1, 1]], [[1, 1], [1, 1]], [[1, 1], [1, 1]]]
    rand = MaskTune("rand", warmup_epochs=0, rho=0.5, seed=1)
    rand.load_state_dict(tune.state_dict())
    drawn = rand.batch_mask(["a"], (2, 2), 3, device)
    assert drawn.sum() == 2 and torch.equal(drawn, rand.batch_mask(["a"], (2, 2), 3, device))
    assert MaskTune("none", warmup_epochs=0, rho=0.5).batch_mask(["a"], (2, 2), 5, device).all()


@pytest.mark.parametrize("rho", [0.25, 0.5, 0.75])
def test_quantile_rule_keeps_the_stated_fraction_of_cells_whatever_the_loss(rho):
    """The keep fraction of Self-MaskTune is bounded: 1 - rho of the labelled cells (up to one cell per sample), even
    for the heavy-tailed losses where the literal max rule keeps a few percent."""
    from satpy_prenet.training.masktune import MaskTune

    generator = torch.Generator().manual_seed(7)
    loss = torch.distributions.Exponential(1.0).sample((6, 64, 64)) ** 4  # a few confidently wrong pixels
    counted = torch.ones(6, 64, 64, dtype=torch.bool)
    loss = loss * torch.rand(6, 64, 64, generator=generator)
    tune = MaskTune("self", warmup_epochs=0, rho=rho, rule="quantile", cell=8)
    tune.record([str(i) for i in range(6)], loss, counted)
    tune.end_epoch()
    assert abs(tune.keep_fraction() - (1 - rho)) <= 1 / 64 + 1e-9
    literal = MaskTune("self", warmup_epochs=0, rho=0.5, rule="max", cell=1)
    literal.record([str(i) for i in range(6)], loss, counted)
    literal.end_epoch()
    assert literal.keep_fraction() < 0.05  # what the paper's rule does to pixel losses of this shape


# --- datasets ---------------------------------------------------------------------------------------------------


def test_swath_dataset_pads_normalises_and_loads_in_workers(data):
    from torch.utils.data import DataLoader

    from satpy_prenet.training.datasets import compute_normalisation, open_split

    normalisation = compute_normalisation(store_path(data, SWATH_MPR, "train"), SWATH_MPR, bands=PAPER_BANDS[2:])
    assert len(normalisation.stats["ir"][0]) == 6 and len(normalisation.stats["pr"][0]) == 176
    dataset = open_split(data, SWATH_MPR, "train", bands=PAPER_BANDS, size_multiple=16,
                         normalisation=compute_normalisation(store_path(data, SWATH_MPR, "train"), SWATH_MPR,
                                                             bands=PAPER_BANDS))
    sample = dataset[0]
    assert sample["ir"].shape == (8, ALONG, 64) and sample["pr"].shape == (176, ALONG, 64)
    assert sample["label"].shape == (ALONG, 64) and torch.isnan(sample["label"][:, ACROSS:]).all()
    assert (sample["footprint"][:, :ACROSS] == 1).all() and (sample["footprint"][:, ACROSS:] == 0).all()
    assert torch.isfinite(sample["ir"]).all() and (sample["ir"][2, :4, :4] == 0).all()
    assert abs(float(sample["ir"][:, :, :ACROSS].mean())) < 1.0
    batches = list(DataLoader(dataset, batch_size=3, num_workers=2))
    assert sum(len(batch["sample_id"]) for batch in batches) == COUNTS["train"]
    assert batches[0]["sample_id"][1] == "swath-train-001" and batches[0]["index"].tolist() == [0, 1, 2]


def test_dataset_errors_name_the_store(data, tmp_path):
    from satpy_prenet.training.datasets import open_split

    with pytest.raises(StoreError, match="full_ipr/train.zarr: no training store"):
        open_split(tmp_path, FULL_IPR, "train", bands=PAPER_BANDS, normalisation=None, size_multiple=16)
    with pytest.raises(StoreError, match="store of kind 'full_ipr', expected swath_mpr"):
        from satpy_prenet.training.datasets import TileDataset

        TileDataset(store_path(data, FULL_IPR, "train"), SWATH_MPR, bands=PAPER_BANDS, normalisation=None,
                    size_multiple=16)
    with pytest.raises(StoreError, match="lacks the band"):
        open_split(data, FULL_IPR, "train", bands=("IR10.8", "IR9.9"), normalisation=None, size_multiple=16)


# --- the pipeline ------------------------------------------------------------------------------------------------


def test_pipeline_writes_checkpoints_logs_and_bundle(pipeline):
    import json

    from satpy_prenet.training.checkpoints import load_checkpoint

    workdir, _, results = pipeline
    for stage in ("teacher", "distill", "adapt"):
        for head in ("classifier", "regressor"):
            folder = workdir / "checkpoints" / f"{stage}-{head}"
            assert (folder / "last.pt").is_file() and (folder / "best.pt").is_file()
            record = json.loads((folder / "metrics.jsonl").read_text().splitlines()[-1])
            assert record["steps"] == 2 and math.isfinite(record["train"]["loss"])
            assert ("csi" if head == "classifier" else "rmse_rain") in record["validation"]
            if stage == "distill":
                assert {"task", "kd", "rec"} <= set(record["train"])
            if stage == "adapt":
                assert record["masks"]["count"] == COUNTS["train"]
            best = load_checkpoint(folder / "best.pt")
            assert results[stage][head].best_epoch == best["epoch"] == best["best"]["epoch"]
            assert results[stage][head].best_value == pytest.approx(record["validation"][results[stage][head].metric],
                                                                    nan_ok=True)
    assert results["export"]["bundle"] == workdir / "prenet-small.safetensors"
    cache = json.loads((workdir / "checkpoints" / "normalisation.json").read_text())
    assert cache["key"]["tiles"] == COUNTS["train"] and cache["key"]["kind"] == SWATH_MPR


def test_bundle_round_trip_matches_in_memory_retriever(pipeline, data):
    from satpy_prenet.bundle import load_bundle, load_model_once
    from satpy_prenet.training.common import StageRun
    from satpy_prenet.training.distributed import DistContext
    from satpy_prenet.training.export import merged_retriever

    workdir, config, results = pipeline
    path = results["export"]["bundle"]
    bundle = load_bundle(path)
    header = bundle.header
    assert header.purpose == "demo-synthetic" and header.bands == PAPER_BANDS
    assert set(header.provenance["stages"]) >= {"teacher-classifier", "adapt-regressor"}
    assert "test_full_ipr" in header.provenance["metrics"] and header.provenance["seeds"]["adapt"] == 0
    retriever = merged_retriever(StageRun(config=config, workdir=workdir, data=data, context=DistContext()))
    retriever.probability_threshold = header.probability_threshold
    bt = torch.from_numpy(xr.open_zarr(store_path(data, FULL_IPR, "test"), consolidated=False)["ir"].values)
    with torch.no_grad():
        expected = retriever(bt)
        loaded = bundle.model(bt)
        cached = load_model_once(path).model(bt)
    for mine, theirs, again in zip(expected, loaded, cached, strict=True):
        torch.testing.assert_close(theirs, mine, rtol=1e-4, atol=1e-5)  # the bundle's batch norms are folded
        torch.testing.assert_close(again, theirs, rtol=0, atol=0)


def test_lora_trains_only_adapters_and_decoder_and_merges_exactly(pipeline, data):
    from satpy_prenet.training.checkpoints import load_checkpoint
    from satpy_prenet.training.common import student_network
    from satpy_prenet.training.lora import add_lora, merge_lora

    workdir, config, _ = pipeline
    distilled = load_checkpoint(workdir / "checkpoints/distill-regressor/best.pt")["model"]
    adapted = load_checkpoint(workdir / "checkpoints/adapt-regressor/last.pt")["model"]
    prefix = "base_model.model."
    changed = {name[len(prefix):] for name, value in adapted.items()
               if name[len(prefix):] in distilled and not torch.equal(value, distilled[name[len(prefix):]])}
    assert changed and all(name.startswith(("ups.", "head.")) for name in changed), sorted(changed)[:5]
    lora_b = [value for name, value in adapted.items() if "lora_B" in name]
    assert lora_b and any(value.abs().sum() > 0 for value in lora_b)  # the adapters moved away from zero
    network = add_lora(student_network(config.model, "regressor"), rank=1, alpha=1.0)
    network.load_state_dict(adapted)
    trainable = {name for name, p in network.named_parameters() if p.requires_grad}
    assert all("lora_" in name or name[len(prefix):].startswith(("ups.", "head.")) for name in trainable), sorted(
        trainable)
    assert not any(".autoencoder.head." in name and "lora_" not in name for name in trainable)
    network.eval()
    x = torch.randn(2, 8, 32, 32)
    with torch.no_grad():
        before = network(x).out
        merged = merge_lora(network)
        after = merged(x).out
    assert set(merged.state_dict()) == set(distilled)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("statistics", ["train", "frozen"])
def test_stage_two_batchnorm_statistics_follow_the_setting(statistics):
    from satpy_prenet.training.adapt import AdaptTask
    from satpy_prenet.training.common import student_network
    from satpy_prenet.training.lora import add_lora, base_network

    config = tiny_config()
    network = add_lora(student_network(config.model, "classifier"), rank=1, alpha=1.0)
    task = AdaptTask("classifier", config.model, network, masktune=None, batchnorm_statistics=statistics)
    task.set_train_mode(True)
    decoder = base_network(network).ups
    norms = [module for module in decoder.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    assert norms and decoder.training
    before = [norm.running_mean.clone() for norm in norms]
    network(torch.randn(2, len(config.model.bands), 32, 32) * 5 + 3)
    moved = [not torch.equal(norm.running_mean, old) for norm, old in zip(norms, before, strict=True)]
    assert all(not norm.training for norm in norms) == (statistics == "frozen")
    assert any(moved) == (statistics == "train")


def test_resume_equals_uninterrupted_run_and_masks_survive_workers(data, tmp_path):
    """Two adapt epochs (the second masked), straight vs one epoch + --resume with 2 DataLoader workers."""
    from satpy_prenet.training.checkpoints import CheckpointError, load_checkpoint
    from satpy_prenet.training.stages import run_stage

    base = tmp_path / "base"
    config = tiny_config(epochs=2, warmup_epochs=1)
    for stage in ("teacher", "distill"):
        run_stage(stage, config, base, data=data, heads=("classifier",), device="cpu")
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    for workdir in (straight, interrupted):
        (workdir / "checkpoints").mkdir(parents=True)
        for stage in ("teacher", "distill"):
            (workdir / "checkpoints" / f"{stage}-classifier").symlink_to(base / "checkpoints" / f"{stage}-classifier")
    run_stage("adapt", config, straight, data=data, heads=("classifier",), device="cpu")
    first = tiny_config(epochs=1, warmup_epochs=1, num_workers=2)
    run_stage("adapt", first, interrupted, data=data, heads=("classifier",), device="cpu")
    run_stage("adapt", tiny_config(epochs=2, warmup_epochs=1, num_workers=2), interrupted, data=data,
              heads=("classifier",), device="cpu", resume=True)
    a = load_checkpoint(straight / "checkpoints/adapt-classifier/last.pt")
    b = load_checkpoint(interrupted / "checkpoints/adapt-classifier/last.pt")
    assert a["epoch"] == b["epoch"] == 2
    for name, value in a["model"].items():
        torch.testing.assert_close(b["model"][name], value, rtol=0, atol=0, msg=name)
    assert set(a["task"]["masks"]) == {f"disc-train-{i:03d}" for i in range(COUNTS["train"])}
    for key, mask in a["task"]["masks"].items():
        assert torch.equal(b["task"]["masks"][key], mask)
    lines = (interrupted / "checkpoints/adapt-classifier/metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2
    with pytest.raises(CheckpointError, match="pass --resume"):
        run_stage("adapt", config, straight, data=data, heads=("classifier",), device="cpu")
    with pytest.raises(CheckpointError, match="changed configuration"):
        run_stage("adapt", tiny_config(epochs=3, lr=0.5), straight, data=data, heads=("classifier",),
                  device="cpu", resume=True)


# --- errors --------------------------------------------------------------------------------------------------------


def test_tampered_or_foreign_checkpoints_give_clear_errors(pipeline, tmp_path):
    from satpy_prenet.training.checkpoints import CheckpointError, load_checkpoint

    workdir, _, _ = pipeline
    source = workdir / "checkpoints/teacher-classifier/best.pt"
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(source.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated.pt: not a readable satpy-prenet checkpoint"):
        load_checkpoint(truncated)
    evil = tmp_path / "evil.pt"
    torch.save({"format": "satpy-prenet-checkpoint", "payload": dt.datetime(2026, 1, 1)}, evil)
    with pytest.raises(CheckpointError, match="evil.pt: not a readable"):
        load_checkpoint(evil)
    pickled = tmp_path / "pickled.pt"
    pickled.write_bytes(pickle.dumps({"format": "x"}))
    with pytest.raises(CheckpointError, match="pickled.pt"):
        load_checkpoint(pickled)
    with pytest.raises(CheckpointError, match="checkpoint of stage 'teacher', expected 'adapt'"):
        load_checkpoint(source, stage="adapt")


def test_cli_reports_missing_inputs_and_mismatched_bands(pipeline, tmp_path):
    from satpy_prenet.training.cli import main

    workdir, _, _ = pipeline
    config = tmp_path / "tiny.yaml"
    config.write_text("model: {preset: small}\n")
    runner = CliRunner()
    result = runner.invoke(main, ["distill", "--config", str(config), "--workdir", str(tmp_path / "empty"),
                                  "--device", "cpu", "--head", "regressor"])
    assert result.exit_code == 1 and "teacher-regressor/best.pt: checkpoint not found" in result.output
    result = runner.invoke(main, ["teacher", "--config", str(config), "--workdir", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "swath_mpr/train.zarr: no training store" in result.output
    config.write_text("model: {preset: small, bands: [IR10.8, IR12.0]}\n")
    result = runner.invoke(main, ["export", "--config", str(config), "--workdir", str(workdir), "--device", "cpu"])
    assert result.exit_code == 1 and "trained with bands" in result.output
    result = runner.invoke(main, ["--help"])
    assert all(name in result.output for name in ("teacher", "distill", "adapt", "export"))


def test_cli_refuses_an_unknown_device_and_an_empty_sources_folder(tmp_path):
    from satpy_prenet.training.cli import main

    config = tmp_path / "tiny.yaml"
    config.write_text("model: {preset: small}\n")
    runner = CliRunner()
    for command in (["teacher"], ["all", "--simulate"]):
        result = runner.invoke(main, [*command, "--config", str(config), "--workdir", str(tmp_path / "w"),
                                      "--device", "gpu"])
        assert result.exit_code == 2 and "Unknown torch device 'gpu'" in result.output
        assert not isinstance(result.exception, ValueError)
    (tmp_path / "sources" / "empty-subfolder").mkdir(parents=True)
    result = runner.invoke(main, ["build", "--config", str(config), "--sources", str(tmp_path / "sources"),
                                  "--workdir", str(tmp_path / "w"), "--workers", "0"])
    assert result.exit_code == 1
    assert f"{tmp_path / 'sources'}: holds no AGRI L1 4 km, GMI 1C, DPR 2A or CLDAS file" in result.output
    assert not (tmp_path / "w" / "datasets").exists()


def test_config_rejects_negative_weights():
    for key, value in (("lora_alpha", 0), ("weight_decay", -1e-4), ("lambda_kd", -0.1), ("gamma_rec", -1)):
        with pytest.raises(ConfigError, match=f"{key} must"):
            StageConfig.from_dict({key: value})


# --- losses on padded swath tiles and validation ---------------------------------------------------------------------


def test_distillation_losses_ignore_the_across_track_padding():
    from satpy_prenet.training.losses import feature_kd, reconstruction_loss

    gen = torch.Generator().manual_seed(1)
    footprint = torch.zeros(2, 16, 32)
    footprint[:, :, :24] = 1  # 24 real columns padded to 32: 12, 6 and 3 real feature columns at strides 2, 4, 8
    shapes = ((4, 8, 16), (6, 4, 8), (8, 2, 4))
    student = [torch.randn(2, *shape, generator=gen) for shape in shapes]
    teacher = [torch.randn(2, *shape, generator=gen) for shape in shapes]
    real = [feature[..., : 24 // 2 ** (scale + 1)] for scale, feature in enumerate(student)]
    real_teacher = [feature[..., : 24 // 2 ** (scale + 1)] for scale, feature in enumerate(teacher)]
    for feature in student:  # garbage on the padding must not change anything
        feature[..., feature.shape[-1] * 3 // 4:] = 1e3
    options = {"temperature": 3.0, "weights": (1.0, 2.0, 4.0)}
    expected = feature_kd(real, real_teacher, **options)
    assert feature_kd(student, teacher, footprint=footprint, **options).item() == pytest.approx(expected.item())
    assert feature_kd(student, teacher, **options).item() != pytest.approx(expected.item())
    assert reconstruction_loss(student, teacher, footprint=footprint).item() == pytest.approx(
        reconstruction_loss(real, real_teacher).item())


def test_teacher_batch_norm_statistics_stay_unchanged_while_distilling():
    from satpy_prenet.training.common import teacher_network
    from satpy_prenet.training.config import ModelSection
    from satpy_prenet.training.distill import DistillTask

    model = ModelSection()
    task = DistillTask("classifier", model, StageConfig(), teacher_network(model, "classifier"))
    before = {name: value.clone() for name, value in task.teacher.state_dict().items()}
    task.set_train_mode(True)
    gen = torch.Generator().manual_seed(0)
    batch = {"ir": torch.randn(2, 8, 16, 32, generator=gen), "pmw": torch.randn(2, 13, 16, 32, generator=gen),
             "pr": torch.randn(2, 176, 16, 32, generator=gen), "geo": torch.randn(2, 3, 16, 32, generator=gen),
             "label": torch.rand(2, 16, 32, generator=gen), "footprint": torch.ones(2, 16, 32)}
    loss, parts = task.training_loss(task.model, batch, 0)
    assert set(parts) == {"task", "kd", "rec"} and task.loss_weights == {"kd": 0.2, "rec": 50.0, "response": 0.0}
    loss.backward()
    assert not task.teacher.training and task.model.training
    assert all(parameter.grad is None for parameter in task.teacher.parameters())
    for name, value in task.teacher.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_classifier_validation_counts_probability_one_half_as_rain():
    from satpy_prenet.training.validation import ValidationScores

    scores = ValidationScores("classifier")
    scores.update(torch.zeros(1, 2, 1, 2), torch.tensor([[[0.1, 0.0]]]))  # P(rain) = 0.5 everywhere
    result = scores.result()
    assert result["pod"] == 1.0 and result["far"] == 0.5 and result["csi"] == 0.5


# --- the loop: non-finite losses, scaler overflow, resume, metrics log -----------------------------------------------


class _TinyTask(PlainTask):
    """A 1x1 convolution regressing the label: the loop without the cost of a PRE-Net."""

    stage, head, regressor_pixels = "teacher", "regressor", "valid"

    def __init__(self, scale: float = 1.0) -> None:
        torch.manual_seed(0)
        self.model = torch.nn.Conv2d(1, 1, 1)
        self.scale = scale

    def set_train_mode(self, training):
        self.model.train(training)

    def training_loss(self, network, batch, epoch):
        from satpy_prenet.training.losses import task_loss

        loss, _ = task_loss("regressor", network(batch["x"]) * self.scale, batch["label"], "valid")
        return loss, {"task": loss.detach()}

    def predict(self, batch):
        return self.model(batch["x"])


def _tiny_trainer(directory, *, task=None, context=None, model=None, **changes):
    from satpy_prenet.training.config import ModelSection
    from satpy_prenet.training.distributed import DistContext
    from satpy_prenet.training.trainer import Trainer

    gen = torch.Generator().manual_seed(0)
    samples = [{"sample_id": f"s{i}", "x": torch.randn(1, 4, 4, generator=gen),
                "label": torch.rand(4, 4, generator=gen)} for i in range(4)]
    config = StageConfig(**{"epochs": 1, "batch_size": 2, "optimizer": "adamw", "lr": 1e-2, "lr_halving_epochs": 0,
                            **changes})
    return Trainer(task or _TinyTask(), config, train_set=samples, validation_set=samples, directory=directory,
                   context=context or DistContext(), extras={"model_section": (model or ModelSection()).to_dict()})


def test_a_non_finite_loss_on_another_process_stops_this_one_before_backward(tmp_path):
    from satpy_prenet.training.distributed import DistContext

    class OtherProcessFails(DistContext):
        def all_reduce_sum(self, values):
            return values + 1  # the summed flag: one other process saw a non-finite loss

    trainer = _tiny_trainer(tmp_path, context=OtherProcessFails())
    weight = trainer.task.model.weight.detach().clone()
    with pytest.raises(FloatingPointError, match="non-finite on 1 process"):
        trainer.fit()
    assert torch.equal(trainer.task.model.weight, weight) and trainer.task.model.weight.grad is None
    with pytest.raises(FloatingPointError, match=r"non-finite on 1 process\(es\) in epoch 1 \(here: (inf|nan)\)"):
        _tiny_trainer(tmp_path / "inf", task=_TinyTask(scale=math.inf)).fit()


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before:UserWarning")
def test_an_overflow_of_the_scaled_gradients_does_not_stop_the_run(tmp_path):
    trainer = _tiny_trainer(tmp_path, task=_TinyTask(scale=1e6), epochs=2)
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**120)  # scaled gradients overflow float32
    result = trainer.fit()
    assert result.epochs == 2 and trainer.scaler.get_scale() < 2.0**120  # steps were skipped, the scale backed off
    assert all(math.isfinite(record["train"]["loss"]) for record in result.history)


def test_resume_refuses_a_tampered_or_incompatible_last_checkpoint(tmp_path):
    from satpy_prenet.training.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
    from satpy_prenet.training.config import ModelSection

    _tiny_trainer(tmp_path).fit()
    last = tmp_path / "last.pt"
    original = load_checkpoint(last)

    def tampered(change):
        state = copy.deepcopy({key: value for key, value in original.items()
                               if key not in ("format", "format_version")})
        change(state)
        save_checkpoint(last, state)

    cases = [(lambda state: state.pop("optimizer"), "lacks optimizer"),
             (lambda state: state.pop("rng"), "lacks rng"),
             (lambda state: state.update(model={"weight": torch.zeros(2, 1, 1, 1)}), "does not fit this run"),
             (lambda state: state.update(optimizer={"state": {}, "param_groups": []}), "does not fit this run"),
             (lambda state: state["model_section"].update(bands=list(reversed(PAPER_BANDS))), "bands"),
             (lambda state: state["model_section"].update(preset="paper"), "preset: paper -> small")]
    for change, message in cases:
        tampered(change)
        with pytest.raises(CheckpointError, match=f"last.pt: cannot resume.*{message}"):
            _tiny_trainer(tmp_path, epochs=2).fit(resume=True)
    save_checkpoint(last, {key: value for key, value in original.items() if key not in ("format", "format_version")})
    with pytest.raises(CheckpointError, match="last.pt: cannot resume, the model section changed"):
        _tiny_trainer(tmp_path, epochs=2, model=ModelSection(regressor_pixels="valid")).fit(resume=True)
    assert _tiny_trainer(tmp_path, epochs=2).fit(resume=True).epochs == 2


def test_metrics_log_follows_the_checkpoints(tmp_path, monkeypatch):
    import json

    from satpy_prenet.training import trainer as trainer_module

    log = tmp_path / "metrics.jsonl"
    log.write_text('{"epoch": 1, "stale": true}\n{"epoch": 2}\n{"epo')  # left by a removed run
    _tiny_trainer(tmp_path).fit()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [record["epoch"] for record in records] == [1] and "stale" not in records[0]
    with log.open("a") as stream:
        stream.write('{"epoch": 2, "interrupted": true}\n{"epoch": 3')  # an epoch logged after the last checkpoint
    _tiny_trainer(tmp_path, epochs=2).fit(resume=True)
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2]

    def failing_save(path, state):
        raise OSError("disk full")

    monkeypatch.setattr(trainer_module, "save_checkpoint", failing_save)
    with pytest.raises(OSError, match="disk full"):
        _tiny_trainer(tmp_path, epochs=3).fit(resume=True)
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2]  # no line without checkpoint


# --- normalisation, export --------------------------------------------------------------------------------------------


def test_normalisation_is_computed_in_one_pass_and_cached(data, tmp_path, monkeypatch):
    from satpy_prenet.data.stores import open_tiles
    from satpy_prenet.training import datasets

    path = store_path(data, SWATH_MPR, "train")
    cache = tmp_path / "normalisation.json"
    first = datasets.cached_normalisation(cache, path, SWATH_MPR, bands=PAPER_BANDS[::-1])
    tiles = open_tiles(path, SWATH_MPR)
    for name in ("ir", "pr"):
        values = np.moveaxis(tiles[name].values, 1, 0).reshape(tiles.sizes[tiles[name].dims[1]], -1)
        mean, std = np.nanmean(values, axis=1), np.nanstd(values, axis=1)
        order = slice(None, None, -1) if name == "ir" else slice(None)
        np.testing.assert_allclose(first.stats[name][0], mean[order], rtol=1e-6)
        np.testing.assert_allclose(np.maximum(first.stats[name][1], 1.0) * (std[order] >= 1e-6),
                                   np.maximum(std[order], 1.0) * (std[order] >= 1e-6), rtol=1e-6)

    def no_recomputation(*args, **kwargs):
        raise AssertionError("the cached statistics were computed again")

    monkeypatch.setattr(datasets, "compute_normalisation", no_recomputation)
    assert datasets.cached_normalisation(cache, path, SWATH_MPR, bands=PAPER_BANDS[::-1]) == first
    assert first.only("ir").stats == {"ir": first.stats["ir"]} and set(first.stats) > {"ir"}
    with pytest.raises(AssertionError, match="computed again"):  # other bands: another key
        datasets.cached_normalisation(cache, path, SWATH_MPR, bands=PAPER_BANDS)


def test_threshold_maximises_the_csi_of_the_product_rule(tmp_path):
    from satpy_prenet.training.common import StageRun
    from satpy_prenet.training.distributed import DistContext
    from satpy_prenet.training.export import choose_threshold

    class Stub(torch.nn.Module):
        """Channel 0: P(rain); channel 1: the regressed rate."""

        probability_threshold = 0.5

        def forward(self, bt):
            probability, rate = bt[:, 0], bt[:, 1]
            return probability, torch.where(probability >= self.probability_threshold, rate, torch.zeros_like(rate))

    # two rainy pixels (P 0.9 and 0.3), three dry ones that the classifier doubts (P 0.4) but the regressor calls dry
    ir = torch.tensor([[[[0.9, 0.3, 0.4, 0.4, 0.4]], [[1.0, 1.0, 0.0, 0.0, 0.0]]]])
    dataset = [{"ir": ir[0], "label": torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0]])}]
    run = StageRun(config=tiny_config(), workdir=tmp_path, data=tmp_path, context=DistContext())
    stub = Stub()
    threshold, csi = choose_threshold(stub, dataset, run)
    assert threshold <= 0.3 and csi == 1.0  # the classifier alone would pick 0.45 (CSI 0.5)
    assert stub.probability_threshold == 0.5
    dry = [{"ir": torch.zeros(2, 1, 3), "label": torch.zeros(1, 3)}]
    threshold, csi = choose_threshold(stub, dry, run)
    assert threshold == 0.05 and math.isnan(csi)


def test_provenance_stages_take_epochs_from_last_and_best_epoch_from_best(tmp_path):
    from satpy_prenet.training.checkpoints import save_checkpoint, stage_dir
    from satpy_prenet.training.common import StageRun, load_stage_weights
    from satpy_prenet.training.config import HEADS, TRAINING_STAGES
    from satpy_prenet.training.distributed import DistContext
    from satpy_prenet.training.export import _stages

    config = tiny_config()
    for stage in TRAINING_STAGES:
        for head in HEADS:
            common = {"stage": stage, "head": head, "model": {}, "metric": "csi",
                      "model_section": config.model.to_dict()}
            save_checkpoint(stage_dir(tmp_path, stage, head) / "last.pt",
                            {**common, "epoch": 5, "best": {"epoch": 2, "value": 0.4}})
            save_checkpoint(stage_dir(tmp_path, stage, head) / "best.pt",
                            {**common, "epoch": 2, "best": {"epoch": 2, "value": 0.4}})
    run = StageRun(config=config, workdir=tmp_path, data=tmp_path, context=DistContext())
    adapted = {head: load_stage_weights(run, "adapt", head) for head in HEADS}
    record = _stages(run, adapted, "adapt")
    assert len(record) == 6
    assert all(item == {"epochs": 5, "best_epoch": 2, "metric": "csi", "value": 0.4} for item in record.values())


# --- Rand- and Non-MaskTune through Stage II ------------------------------------------------------------------------


def test_direct_fit_trains_the_student_alone_and_exports_its_own_bundle(pipeline, data):
    from satpy_prenet.bundle import read_header
    from satpy_prenet.training.stages import run_stage

    workdir, config, _ = pipeline
    fits = run_stage("direct", config, workdir, data=data, device="cpu")
    for fit in fits.values():
        state = torch.load(fit.directory / "best.pt", weights_only=True)
        assert state["stage"] == "direct" and set(state["normalisation"]) == {"ir"}
    bundle = run_stage("export", config, workdir, data=data, source="direct")["bundle"]
    assert bundle.name == "direct-small.safetensors" and (workdir / "prenet-small.safetensors").is_file()
    header = read_header(bundle)
    assert header.provenance["stage"].startswith("direct fit") and set(header.provenance["stages"]) == {
        "direct-classifier", "direct-regressor"}
    pipeline_normalisation = torch.load(workdir / "checkpoints/adapt-classifier/best.pt", weights_only=True)
    assert state["normalisation"]["ir"] == pipeline_normalisation["normalisation"]["ir"]  # the same inputs


@pytest.mark.parametrize("mode", ["rand", "none"])
def test_rand_and_non_masktune_adapt_runs(pipeline, data, tmp_path, mode):
    import json

    from satpy_prenet.training.checkpoints import load_checkpoint
    from satpy_prenet.training.stages import run_stage

    base, _, _ = pipeline
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "distill-regressor").symlink_to(base / "checkpoints" / "distill-regressor")
    config = tiny_config(masktune=mode, epochs=2, warmup_epochs=1, max_steps_per_epoch=1)
    result = run_stage("adapt", config, tmp_path, data=data, heads=("regressor",), device="cpu")["regressor"]
    records = [json.loads(line) for line in (result.directory / "metrics.jsonl").read_text().splitlines()]
    masks = load_checkpoint(result.directory / "last.pt")["task"]["masks"]
    assert [record["epoch"] for record in records] == [1, 2]
    if mode == "none":
        assert "masks" not in records[-1] and masks == {}
    else:
        assert 4 <= records[-1]["masks"]["count"] == len(masks) <= COUNTS["train"]  # one batch of 4 per epoch
        assert 0 < records[-1]["masks"]["keep_fraction"] < 1


# --- the command line -------------------------------------------------------------------------------------------------


def test_cli_verbosity_levels_and_all_shows_step_times(tmp_path, monkeypatch):
    import logging

    from satpy_prenet.training import cli

    root = logging.getLogger()
    level = root.level
    runner = CliRunner()
    try:
        for flags, expected in (([], logging.WARNING), (["-v"], logging.INFO), (["-vv"], logging.DEBUG),
                                (["-vvv"], logging.DEBUG)):
            assert runner.invoke(cli.main, [*flags, "export", "--help"]).exit_code == 0
            assert root.level == expected, flags

        def fake_run_all(config, workdir, *, on_step, progress, **options):
            assert progress
            on_step("build", 1.25)
            return {"bundle": workdir / "bundle.safetensors", "seconds": {"build": 1.25}}

        monkeypatch.setattr(cli, "run_all", fake_run_all)
        config = tmp_path / "tiny.yaml"
        config.write_text("model: {preset: small}\n")
        result = runner.invoke(cli.main, ["all", "--config", str(config), "--workdir", str(tmp_path), "--simulate"])
        assert result.exit_code == 0 and "build: 1.2 s" in result.output, result.output
        for command in (["all", "--simulate"], ["build", "--sources", str(tmp_path)]):
            result = runner.invoke(cli.main, [command[0], "--config", str(config), "--workdir", str(tmp_path),
                                              *command[1:]], env={"WORLD_SIZE": "2"})
            assert result.exit_code == 2 and "without torchrun" in result.output, result.output
    finally:
        root.setLevel(level)


def test_peft_is_only_needed_for_lora(monkeypatch):
    import subprocess
    import sys

    from satpy_prenet.training.common import student_network
    from satpy_prenet.training.config import ModelSection
    from satpy_prenet.training.lora import add_lora

    monkeypatch.setitem(sys.modules, "peft", None)  # as if peft were not installed
    with pytest.raises(ConfigError, match=r'pip install "satpy-prenet\[training\]"'):
        add_lora(student_network(ModelSection(), "regressor"), rank=1, alpha=1.0)
    script = ("import sys; sys.modules['peft'] = None\n"
              "from click.testing import CliRunner\n"
              "from satpy_prenet.training.cli import main\n"
              "for args in (['--help'], ['build', '--help'], ['adapt', '--help']):\n"
              "    result = CliRunner().invoke(main, args)\n"
              "    assert result.exit_code == 0, (args, result.output)\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
