# SPDX-License-Identifier: GPL-3.0-or-later
"""Export: merge the adapters of both adapted heads into a `PrecipitationRetriever`, calibrate, test, write a bundle.

Steps: read ``adapt-classifier/best.pt`` and ``adapt-regressor/best.pt``, merge LoRA into plain PRE-Nets, build
the retriever with the train-split normalisation of the infrared bands (the one every stage used), choose the
rain-probability threshold with the highest CSI on the Full-IPR validation split, score the retriever on the
Full-IPR test split (`satpy_prenet.evaluation.metrics.scores`, pooled over every labelled pixel, plus CSI-4 and
CSI-8; the provenance keys are ``test_full_ipr`` and ``validation_full_ipr_csi``: these are the rain-selected disc
tiles of the split, not whole discs) and write
``<workdir>/prenet-<preset>.safetensors`` with purpose ``research``, or ``demo-synthetic`` when the stores hold
simulated data, and the provenance (configuration, stages, datasets, metrics, seeds).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from satpy_prenet.bundle import save_bundle
from satpy_prenet.data.stores import FULL_IPR, SWATH_MPR, store_path, tile_count
from satpy_prenet.evaluation.metrics import RAIN_THRESHOLD, block_counts, csi_from_counts, scores
from satpy_prenet.model import PrecipitationRetriever, preset
from satpy_prenet.training.checkpoints import CheckpointError
from satpy_prenet.training.common import StageRun, load_stage_weights, restore_weights, size_multiple, student_network
from satpy_prenet.training.config import HEADS, TRAINING_STAGES
from satpy_prenet.training.datasets import TileDataset, is_simulated, open_split
from satpy_prenet.training.lora import add_lora, merge_lora

LOG = logging.getLogger(__name__)

#: Block sizes of the neighbourhood CSIs reported with the test scores (the paper's CSI-4 and CSI-8).
CSI_BLOCKS = (4, 8)


def bundle_path(run: StageRun) -> Path:
    """Where export writes the bundle: ``<workdir>/prenet-<preset>.safetensors``."""
    return run.workdir / f"prenet-{run.config.model.preset}.safetensors"


def merged_retriever(run: StageRun) -> PrecipitationRetriever:
    """The retriever made of both adapted heads, adapters merged, in evaluation mode.

    Raises:
        CheckpointError: If a checkpoint is missing or unreadable, or the two heads were normalised differently.
    """
    model = run.config.model
    states = {head: load_stage_weights(run, "adapt", head) for head in HEADS}
    normalisations = {head: state["normalisation"]["ir"] for head, state in states.items()}
    if normalisations["classifier"] != normalisations["regressor"]:
        raise CheckpointError(f"{run.workdir}: the adapted classifier and regressor were trained with different "
                              "input normalisations; retrain them on the same dataset")
    retriever = PrecipitationRetriever(student=preset(model.preset, in_channels=len(model.bands), out_channels=1),
                                       bands=model.bands, mean=normalisations["classifier"]["mean"],
                                       std=normalisations["classifier"]["std"])
    for head, state in states.items():
        source = str(run.directory("adapt", head) / "best.pt")
        network = add_lora(student_network(model, head), rank=run.config.adapt.lora_rank,
                           alpha=run.config.adapt.lora_alpha)
        restore_weights(network, state, source)
        getattr(retriever, head).load_state_dict(merge_lora(network).state_dict())
    return retriever.eval()


def _loader(dataset: TileDataset, run: StageRun) -> DataLoader:
    return DataLoader(dataset, batch_size=max(1, run.config.adapt.batch_size // run.context.world_size),
                      num_workers=run.config.adapt.num_workers)


@torch.no_grad()
def choose_threshold(retriever: PrecipitationRetriever, dataset: TileDataset, run: StageRun) -> tuple[float, float]:
    """The probability threshold of the grid with the highest CSI on ``dataset``, and that CSI."""
    grid = torch.tensor(run.config.model.threshold_grid, dtype=torch.float64)
    counts = torch.zeros(3, len(grid), dtype=torch.float64)  # hits, misses, false alarms per threshold
    device = run.context.device
    for batch in _loader(dataset, run):
        probability, _ = retriever(batch["ir"].to(device))
        label = batch["label"].to(device)
        valid = torch.isfinite(label)
        truth = label[valid] >= RAIN_THRESHOLD
        predicted = probability[valid].unsqueeze(1) >= grid.to(device)
        counts[0] += (predicted & truth[:, None]).sum(0).double().cpu()
        counts[1] += (~predicted & truth[:, None]).sum(0).double().cpu()
        counts[2] += (predicted & ~truth[:, None]).sum(0).double().cpu()
    csi = counts[0] / counts.sum(0)
    csi = torch.nan_to_num(csi, nan=-1.0)
    best = int(torch.argmax(csi))
    return round(float(grid[best]), 6), float(csi[best])


@torch.no_grad()
def test_scores(retriever: PrecipitationRetriever, dataset: TileDataset, run: StageRun) -> dict[str, Any]:
    """Pooled scores of the retrieved rate against every labelled pixel of ``dataset``, with CSI-4 and CSI-8."""
    predictions, labels = [], []
    blocks = {size: np.zeros(3, np.int64) for size in CSI_BLOCKS}
    for batch in _loader(dataset, run):
        _, rate = retriever(batch["ir"].to(run.context.device))
        rate, label = rate.cpu().numpy(), batch["label"].numpy()
        valid = np.isfinite(label)
        predictions.append(rate[valid])
        labels.append(label[valid])
        for size in CSI_BLOCKS:
            blocks[size] += block_counts(rate, label, size)
    metrics = scores(np.concatenate(predictions), np.concatenate(labels)).to_dict()
    return {**metrics, **{f"csi{size}": csi_from_counts(counts) for size, counts in blocks.items()}}


def export_bundle(run: StageRun) -> Path:
    """Build, calibrate, test and save the bundle; returns its path (see the module docstring)."""
    model = run.config.model
    retriever = merged_retriever(run)
    half = model.bundle_dtype == "float16"
    if half:  # calibrate and test the weights exactly as the float16 bundle will hold them
        for network in (retriever.classifier, retriever.regressor):
            network.half().float()
    retriever = retriever.to(run.context.device)
    options = {"bands": model.bands, "normalisation": None, "size_multiple": size_multiple(model)}
    validation = open_split(run.data, FULL_IPR, "validation", **options)
    test = open_split(run.data, FULL_IPR, "test", **options)
    threshold, validation_csi = choose_threshold(retriever, validation, run)
    retriever.probability_threshold = threshold
    metrics = test_scores(retriever, test, run)
    LOG.info("Probability threshold %.2f (validation CSI %.4f); test scores %s", threshold, validation_csi, metrics)
    purpose = "demo-synthetic" if is_simulated(test) or is_simulated(validation) else "research"
    provenance = {
        "dataset": _datasets(run),
        "stage": "PRE-Net: teacher, Swath-Distilling (Stage I), Full-Disc Adaptation (Stage II), LoRA merged",
        "config": run.config.to_dict(),
        "config_file": str(run.config.source) if run.config.source else None,
        "stages": _stages(run),
        "metrics": {"test_full_ipr": metrics, "validation_full_ipr_csi": validation_csi,
                    "probability_threshold": threshold},
        "seeds": {stage: run.config.stage(stage).seed for stage in TRAINING_STAGES},
    }
    path = save_bundle(bundle_path(run), retriever.cpu(), purpose=purpose, provenance=_jsonable(provenance),
                       half_precision=half)
    LOG.info("Wrote the %s bundle %s", purpose, path)
    return path


def _datasets(run: StageRun) -> dict[str, Any]:
    """Store paths, tile counts and whether they are simulated."""
    record: dict[str, Any] = {"root": str(run.data)}
    for kind in (SWATH_MPR, FULL_IPR):
        for split in ("train", "validation", "test"):
            path = store_path(run.data, kind, split)
            record[f"{kind}/{split}"] = {"path": str(path), "tiles": tile_count(path)}
    return record


def _stages(run: StageRun) -> dict[str, Any]:
    """Best epoch and validation score of every stage and head."""
    record = {}
    for stage in TRAINING_STAGES:
        for head in HEADS:
            state = load_stage_weights(run, stage, head)
            record[f"{stage}-{head}"] = {"epochs": int(state["epoch"]), "best_epoch": int(state["best"]["epoch"]),
                                         "metric": state.get("metric"), "value": state["best"]["value"]}
    return record


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy: NaN and infinities become None, other unknown objects (dates) their text."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.loads(json.dumps(value, default=str))
