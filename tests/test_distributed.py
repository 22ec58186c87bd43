"""Distributed training with torchrun: 2 CPU processes (gloo on 127.0.0.1) against one process.

Stage II runs here because it is deterministic given the data order (no random masking: warm-up without a mask,
then Self-MaskTune) and because its masks must be gathered across processes. One process with a batch of 4 and
two processes with 2 each see the same samples in the same steps (a DistributedSampler in both runs). The only
difference is batch normalisation in the trained decoder, which normalises over 2 samples per process instead of 4,
and the per-process mean of the training loss (the processes' pixel counts differ), so the comparison allows a
tolerance, far smaller than what one epoch of training changes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from satpy_prenet.channels import PAPER_BANDS
from satpy_prenet.data.stores import FULL_IPR
from satpy_prenet.training.checkpoints import load_checkpoint
from satpy_prenet.training.stages import run_stage

sys.path.insert(0, os.path.dirname(__file__))
from test_training import COUNTS, tiny_config, write_stores  # noqa: E402

HEAD = "regressor"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    data = write_stores(root / "datasets", seed=3)
    config = tiny_config(epochs=2, warmup_epochs=1, max_steps_per_epoch=None)
    for stage in ("teacher", "distill"):
        run_stage(stage, config, root / "single", data=data, heads=(HEAD,), device="cpu")
    (root / "ddp" / "checkpoints").mkdir(parents=True)
    for stage in ("teacher", "distill"):
        name = f"{stage}-{HEAD}"
        (root / "ddp" / "checkpoints" / name).symlink_to(root / "single" / "checkpoints" / name)
    run_stage("adapt", config, root / "single", data=data, heads=(HEAD,), device="cpu")
    config_file = root / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.to_dict()))
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
               "-m", "satpy_prenet.training.cli", "adapt", "--config", str(config_file),
               "--workdir", str(root / "ddp"), "--data", str(data), "--head", HEAD, "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, data, config


def _log(workdir):
    path = workdir / "checkpoints" / f"adapt-{HEAD}" / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_ddp_masks_are_complete_and_identical_on_both_ranks(runs):
    root, _, _ = runs
    ddp, single = _log(root / "ddp"), _log(root / "single")
    assert [record["steps"] for record in ddp] == [record["steps"] for record in single] == [2, 2]
    for record in ddp:  # the trainer compares the masks' SHA-256 over processes and fails if they differ
        assert record["masks"]["count"] == COUNTS["train"]
    assert single[-1]["masks"]["count"] == COUNTS["train"]
    masks_ddp = load_checkpoint(root / "ddp/checkpoints" / f"adapt-{HEAD}" / "last.pt")["task"]["masks"]
    masks_single = load_checkpoint(root / "single/checkpoints" / f"adapt-{HEAD}" / "last.pt")["task"]["masks"]
    assert set(masks_ddp) == set(masks_single) == {f"disc-train-{i:03d}" for i in range(COUNTS["train"])}
    agreement = np.mean([np.mean(np.unpackbits(masks_ddp[key].numpy()) == np.unpackbits(masks_single[key].numpy()))
                         for key in masks_single])
    assert agreement > 0.9


def test_ddp_training_agrees_with_one_process(runs):
    """Same global batches: the losses agree closely, and far closer than training moves them."""
    root, _, _ = runs
    ddp, single = _log(root / "ddp"), _log(root / "single")
    for mine, theirs in zip(ddp, single, strict=True):
        assert mine["train"]["loss"] == pytest.approx(theirs["train"]["loss"], rel=0.05)
        assert mine["validation"]["loss"] == pytest.approx(theirs["validation"]["loss"], rel=1e-3)
    moved = abs(single[1]["validation"]["loss"] - single[0]["validation"]["loss"])
    assert moved > 0
    assert abs(ddp[1]["validation"]["loss"] - single[1]["validation"]["loss"]) < 0.2 * moved
    assert ddp[1]["validation"]["rmse_rain"] == pytest.approx(single[1]["validation"]["rmse_rain"], rel=1e-3)


def test_ddp_validation_scores_equal_one_process_evaluation(runs):
    from satpy_prenet.training.adapt import AdaptTask
    from satpy_prenet.training.common import student_network
    from satpy_prenet.training.datasets import Normalisation, open_split
    from satpy_prenet.training.lora import add_lora
    from satpy_prenet.training.masktune import MaskTune
    from satpy_prenet.training.validation import ValidationScores

    root, data, config = runs
    state = load_checkpoint(root / "ddp/checkpoints" / f"adapt-{HEAD}" / "last.pt")
    network = add_lora(student_network(config.model, HEAD), rank=1, alpha=1.0)
    network.load_state_dict(state["model"])
    task = AdaptTask(HEAD, config.model, network, MaskTune("none", warmup_epochs=0, rho=0.5))
    task.set_train_mode(False)
    dataset = open_split(data, FULL_IPR, "validation", bands=PAPER_BANDS, size_multiple=16,
                         normalisation=Normalisation.from_dict(state["normalisation"]))
    scores = ValidationScores(HEAD)
    with torch.no_grad():
        for rank in range(2):  # the shards and batches of the two processes
            batch = [dataset[index] for index in range(rank, len(dataset), 2)]
            ir, label = (torch.stack([sample[name] for sample in batch]) for name in ("ir", "label"))
            scores.update(task.predict({"ir": ir}), label)
    expected = scores.result()
    logged = _log(root / "ddp")[-1]["validation"]
    assert logged["pixels"] == expected["pixels"]
    assert logged["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert logged["rmse_rain"] == pytest.approx(expected["rmse_rain"], rel=1e-5)
