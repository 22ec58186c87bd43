"""Every training stage measurably learns (fixed seeds, tiny real stores, real training steps).

* On the tiny stores of test_training (rain where the cloud field passes 0.55; IR cold where it is cloudy), the
  teacher, Stage I and Stage II each lower their training loss and score a validation CSI well above chance.
* The logs carry every loss term, the gradient norms and the Self-MaskTune keep fraction; the paper's optimiser
  lowers the loss in a short run.

* A controlled toy where the teacher's extra modality carries the label: the microwave sees the cloud field
  cleanly, the infrared through 100 K of noise per band, and 2 % of the training pixels are labelled. Stage I
  with response distillation (the teacher's outputs on every pixel) beats the same student fitted to the labels
  alone in every seed. The paper's feature distillation and reconstruction did not beat the labels alone there
  (measured in docs/training.md, "Distillation on a controlled toy"; not a test, as nothing can be pinned).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from satpy_prenet.training.config import StageConfig, TrainingConfig
from satpy_prenet.training.stages import run_stage

sys.path.insert(0, os.path.dirname(__file__))
from test_training import write_stores  # noqa: E402

torch.set_num_threads(2)

HEAD = "classifier"
REPO = Path(__file__).resolve().parents[1]


def chance_csi(rain_fraction: float) -> float:
    """CSI of a random forecast that rains as often as the truth: b^2 / (2b - b^2)."""
    return rain_fraction / (2.0 - rain_fraction)


def learning_config(epochs: int, **distill) -> TrainingConfig:
    """small preset, AdamW, every batch of the tiny stores, ``epochs`` epochs per stage."""
    stage = StageConfig(epochs=epochs, batch_size=4, optimizer="adamw", lr=2e-3, lr_halving_epochs=0, warmup_epochs=1,
                        seed=0)
    return TrainingConfig(teacher=stage, distill=dataclasses.replace(stage, **distill), adapt=stage)


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """teacher -> distill -> adapt of the classifier on the tiny stores, 4 epochs each."""
    data = write_stores(tmp_path_factory.mktemp("stores"))
    workdir = tmp_path_factory.mktemp("learn")
    config = learning_config(4)
    return {stage: run_stage(stage, config, workdir, data=data, heads=(HEAD,), device="cpu")[HEAD]
            for stage in ("teacher", "distill", "adapt")}


@pytest.mark.parametrize("stage", ["teacher", "distill", "adapt"])
def test_every_stage_lowers_its_loss_and_beats_chance(learned, stage):
    history = learned[stage].history
    assert history[-1]["train"]["task"] < 0.8 * history[0]["train"]["task"], [h["train"] for h in history]
    validation = history[-1]["validation"]
    assert validation["csi"] > chance_csi(0.45) + 0.3, validation  # rain on ~45 % of the labelled pixels


def test_the_logs_show_terms_gradients_and_keep_fraction(learned):
    distill = learned["distill"].history[0]
    assert set(distill["terms"]) == {"task", "kd", "rec"}
    assert distill["terms"]["rec"] == pytest.approx(50.0 * distill["train"]["rec"])
    assert sum(distill["terms"].values()) == pytest.approx(distill["train"]["loss"], rel=1e-6)
    assert {"stem", "stages", "comwe", "ups", "head"} <= set(distill["grad_norm"])
    assert all(value > 0 for value in distill["grad_norm"].values())
    adapt = learned["adapt"].history
    assert set(adapt[0]["grad_norm"]) == {"lora", "ups", "head"}  # what Stage II trains, nothing else
    assert 0.4 <= adapt[-1]["masks"]["keep_fraction"] <= 0.75  # quantile rule, rho 0.5, unlabelled cells visible


def test_the_paper_optimizer_lowers_the_loss_in_a_short_run(tmp_path):
    """etc/training/paper.yaml's RMSprop (lr 1e-6 with the reference release's momentum 0.999, weight decay and
    clipping) lowers the teacher's loss within 12 steps; the same RMSprop without momentum barely moves."""
    from satpy_prenet.training.config import load_config

    data = write_stores(tmp_path / "stores")
    paper = load_config(REPO / "etc/training/paper.yaml").teacher
    losses = {}
    for name, changes in {"paper": {}, "plain": {"momentum": 0.0, "grad_clip": 0.0, "weight_decay": 0.0}}.items():
        stage = dataclasses.replace(paper, epochs=6, batch_size=4, num_workers=0, **changes)
        result = run_stage("teacher", TrainingConfig(teacher=stage), tmp_path / name, data=data, heads=(HEAD,),
                           device="cpu")[HEAD]
        losses[name] = [record["train"]["loss"] for record in result.history]
    assert losses["paper"][-1] < 0.93 * losses["paper"][0], losses  # measured: -12 %
    assert losses["plain"][-1] > 0.96 * losses["plain"][0], losses  # measured: -2 %


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The toy's stores and a teacher trained on them (60 epochs of 4 batches; the best epoch is kept)."""
    data = write_stores(tmp_path_factory.mktemp("toy"), counts={"train": 16, "validation": 8, "test": 4},
                        ir_noise=100.0, labelled=0.02)
    workdir = tmp_path_factory.mktemp("toy-teacher")
    teacher = run_stage("teacher", learning_config(60), workdir, data=data, heads=(HEAD,), device="cpu")[HEAD]
    return data, workdir, teacher


def test_response_distillation_beats_the_labels_alone_on_the_toy(toy, tmp_path):
    """Three student seeds, one teacher, 10 epochs: distillation wins at the best epoch (measured +0.02 to +0.10 CSI
    per seed, mean +0.05; asserted: mean above 0.03, no seed behind by more than 0.02, a margin for other CPUs'
    rounding) and does not drift away after it as the labels alone do (last epoch: +0.08 to +0.15)."""
    data, teacher_workdir, teacher = toy
    assert max(record["validation"]["csi"] for record in teacher.history) > 0.85  # the microwave carries the label
    best, last = {}, {}
    for name, weights in {"labels": {}, "response": {"lambda_response": 2.0}}.items():
        for seed in (0, 1, 2):
            workdir = tmp_path / f"{name}-{seed}"
            shutil.copytree(teacher_workdir / "checkpoints", workdir / "checkpoints")
            config = learning_config(10, lambda_kd=0.0, gamma_rec=0.0, seed=seed, **weights)
            config = dataclasses.replace(config, teacher=dataclasses.replace(config.teacher, epochs=60))
            history = run_stage("distill", config, workdir, data=data, heads=(HEAD,), device="cpu")[HEAD].history
            assert ("response" in history[0]["terms"]) == ("lambda_response" in weights)
            best.setdefault(name, []).append(max(record["validation"]["csi"] for record in history))
            last.setdefault(name, []).append(history[-1]["validation"]["csi"])
    gains = [ours - theirs for ours, theirs in zip(best["response"], best["labels"], strict=True)]
    assert min(gains) > -0.02 and sum(gains) / len(gains) > 0.03, best
    assert sum(last["response"]) - sum(last["labels"]) > 3 * 0.05, last
