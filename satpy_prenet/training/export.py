# SPDX-License-Identifier: GPL-3.0-or-later
"""Export: merge the adapters of both adapted heads into a `PrecipitationRetriever`, calibrate, test, write a bundle.

Steps: read ``adapt-classifier/best.pt`` and ``adapt-regressor/best.pt`` (once), merge LoRA into plain PRE-Nets,
build the retriever with the train-split normalisation of the infrared bands (the one every stage used), choose the
rain-probability threshold with the highest CSI of the product on the Full-IPR validation split (a pixel rains where
P(rain) >= threshold and the regressed rate >= 0.1 mm/h, the rule the test scores apply), score the retriever on the
Full-IPR test split in constant memory (`satpy_prenet.evaluation.metrics.StreamingScores`, pooled over every
labelled pixel, plus CSI-4 and CSI-8; the provenance keys are ``test_full_ipr`` and ``validation_full_ipr_csi``:
these are the rain-selected disc tiles of the split, not whole discs) and write
``<workdir>/prenet-<preset>.safetensors`` with purpose ``research``, or ``demo-synthetic`` when the stores hold
simulated data, and the provenance (configuration, stages, datasets, metrics, seeds).

With ``source="direct"`` the same steps make ``<workdir>/direct-<preset>.safetensors`` of the direct fit's heads
(the baseline trained on Full-IPR alone; no adapters to merge), so both are scored by one rule.

Export is one process: run it without ``torchrun`` (under ``torchrun`` only rank 0 exports; the others return at
once).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from satpy_prenet.bundle import save_bundle
from satpy_prenet.data.stores import FULL_IPR, SWATH_MPR, store_path, tile_count
from satpy_prenet.evaluation.metrics import RAIN_THRESHOLD, StreamingScores
from satpy_prenet.model import PrecipitationRetriever
from satpy_prenet.training.checkpoints import CheckpointError, load_checkpoint
from satpy_prenet.training.common import (
    StageRun,
    load_stage_weights,
    restore_weights,
    size_multiple,
    student_config,
    student_network,
)
from satpy_prenet.training.config import HEADS, TRAINING_STAGES
from satpy_prenet.training.datasets import is_simulated, open_split
from satpy_prenet.training.lora import add_lora, merge_lora
from satpy_prenet.training.trainer import data_loader
from satpy_prenet.training.validation import threshold_contingency

LOG = logging.getLogger(__name__)

#: Written by `satpy_prenet.training.pipeline.run_all` into the work directory after each step: how the run was
#: made and the seconds of each step; export copies it into the bundle's provenance.
PIPELINE_RECORD = "pipeline.json"

#: Block sizes of the neighbourhood CSIs reported with the test scores (the paper's CSI-4 and CSI-8).
CSI_BLOCKS = (4, 8)


#: What each export source's bundle holds: (file name prefix, provenance description).
SOURCES = {"adapt": ("prenet", "PRE-Net: teacher, Swath-Distilling (Stage I), Full-Disc Adaptation (Stage II), LoRA "
                               "merged"),
           "direct": ("direct", "direct fit: the PRE-Net student trained on Full-IPR labels alone, without teacher "
                                "or adaptation (baseline)")}


def bundle_path(workdir: Path, preset: str, source: str = "adapt") -> Path:
    """Where export writes the bundle: ``<workdir>/prenet-<preset>.safetensors`` (``direct-`` for the direct fit)."""
    return Path(workdir) / f"{SOURCES[source][0]}-{preset}.safetensors"


def adapted_states(run: StageRun, source: str = "adapt") -> dict[str, dict[str, Any]]:
    """The ``best.pt`` checkpoints of both heads of ``source``, checked against the configuration."""
    return {head: load_stage_weights(run, source, head) for head in HEADS}


def merged_retriever(run: StageRun, states: dict[str, dict[str, Any]] | None = None,
                     source: str = "adapt") -> PrecipitationRetriever:
    """The retriever made of both heads of ``source``, adapters merged, in evaluation mode.

    Args:
        run: The export run.
        states: The heads' checkpoints (`adapted_states`; read here when None).
        source: ``adapt`` (PRE-Net) or ``direct``.

    Raises:
        CheckpointError: If a checkpoint is missing or unreadable, or the two heads were normalised differently.
    """
    model = run.config.model
    states = adapted_states(run, source) if states is None else states
    normalisations = {head: state["normalisation"]["ir"] for head, state in states.items()}
    if normalisations["classifier"] != normalisations["regressor"]:
        raise CheckpointError(f"{run.workdir}: the adapted classifier and regressor were trained with different "
                              "input normalisations; retrain them on the same dataset")
    retriever = PrecipitationRetriever(student=replace(student_config(model), out_channels=1),
                                       bands=model.bands, mean=normalisations["classifier"]["mean"],
                                       std=normalisations["classifier"]["std"])
    for head, state in states.items():
        network = student_network(model, head)
        if source == "adapt":
            network = add_lora(network, rank=run.config.adapt.lora_rank, alpha=run.config.adapt.lora_alpha)
        restore_weights(network, state, run.directory(source, head) / "best.pt")
        getattr(retriever, head).load_state_dict(merge_lora(network).state_dict())
    return retriever.eval()


def _batches(dataset: Dataset, run: StageRun) -> DataLoader:
    """Batches of ``dataset`` for the single export process."""
    return data_loader(dataset, run.config.adapt.batch_size, num_workers=run.config.adapt.num_workers,
                       device=run.context.device)


@torch.no_grad()
def choose_threshold(retriever: PrecipitationRetriever, dataset: Dataset, run: StageRun) -> tuple[float, float]:
    """The probability threshold of the grid with the highest CSI of the product on ``dataset``, and that CSI.

    The product rains where P(rain) >= threshold and the regressed rate >= 0.1 mm/h, as the test scores count it;
    the retriever runs with its threshold at 0 to get the ungated rate (its own threshold is restored after).
    """
    grid = torch.tensor(run.config.model.threshold_grid, dtype=torch.float64)
    counts = torch.zeros(3, len(grid), dtype=torch.float64)  # hits, misses, false alarms per threshold
    device = run.context.device
    kept, retriever.probability_threshold = retriever.probability_threshold, 0.0
    try:
        for batch in _batches(dataset, run):
            probability, rate = retriever(batch["ir"].to(device))
            label = batch["label"].to(device)
            valid = torch.isfinite(label) & torch.isfinite(rate)
            counts += threshold_contingency(probability[valid], label[valid] >= RAIN_THRESHOLD, grid,
                                            raining=rate[valid] >= RAIN_THRESHOLD)
    finally:
        retriever.probability_threshold = kept
    csi = torch.nan_to_num(counts[0] / counts.sum(0), nan=-1.0)
    best = int(torch.argmax(csi))
    if csi[best] < 0:
        LOG.warning("No probability threshold has a defined CSI on the validation split (neither rain nor a rain "
                    "forecast in it); keeping %.2f, the first of threshold_grid", float(grid[best]))
        return round(float(grid[best]), 6), float("nan")
    return round(float(grid[best]), 6), float(csi[best])


@torch.no_grad()
def test_scores(retriever: PrecipitationRetriever, dataset: Dataset, run: StageRun) -> dict[str, Any]:
    """Pooled scores of the retrieved rate against every labelled pixel of ``dataset``, with CSI-4 and CSI-8."""
    accumulator = StreamingScores(blocks=CSI_BLOCKS)
    for batch in _batches(dataset, run):
        _, rate = retriever(batch["ir"].to(run.context.device))
        accumulator.update(rate.cpu().numpy(), batch["label"].numpy())
    return {**accumulator.result().to_dict(), **accumulator.block_csi()}


def export_bundle(run: StageRun, source: str = "adapt") -> Path:
    """Build, calibrate, test and save the bundle of ``source``; returns its path (see the module docstring)."""
    model = run.config.model
    states = adapted_states(run, source)
    retriever = merged_retriever(run, states, source)
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
        "stage": SOURCES[source][1],
        "config": run.config.to_dict(),
        "config_file": str(run.config.source) if run.config.source else None,
        "stages": _stages(run, states, source),
        "metrics": {"test_full_ipr": metrics, "validation_full_ipr_csi": validation_csi,
                    "probability_threshold": threshold,
                    "probability_threshold_rule": "highest validation CSI of the product: P(rain) >= threshold and "
                                                  f"regressed rate >= {RAIN_THRESHOLD} mm/h"},
        "seeds": {stage: run.config.stage(stage).seed for stage in _trained(source)},
    }
    record = run.workdir / PIPELINE_RECORD
    if record.is_file():  # made by `satpy-prenet-train all`: how, and the time of each step
        provenance["pipeline"] = json.loads(record.read_text())
    path = save_bundle(bundle_path(run.workdir, model.preset, source), retriever.cpu(), purpose=purpose,
                       provenance=_jsonable(provenance), half_precision=half)
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


def _trained(source: str) -> tuple[str, ...]:
    """The stages that made the heads of ``source``."""
    return TRAINING_STAGES if source == "adapt" else (source,)


def _stages(run: StageRun, exported: dict[str, dict[str, Any]], source: str) -> dict[str, Any]:
    """Completed epochs (from ``last.pt``), best epoch and validation score (from ``best.pt``) of every stage and head.

    Args:
        run: The export run.
        exported: The exported heads' ``best.pt`` checkpoints, already read; the others are memory-mapped, so their
            weights and optimizer states are not read for this metadata.
        source: The stage of the exported heads.
    """
    record = {}
    for stage in _trained(source):
        for head in HEADS:
            best = exported[head] if stage == source else load_stage_weights(run, stage, head, mmap=True)
            last_path = run.directory(stage, head) / "last.pt"
            last = load_checkpoint(last_path, stage=stage, head=head, mmap=True) if last_path.is_file() else None
            record[f"{stage}-{head}"] = {"epochs": int(last["epoch"]) if last is not None else None,
                                         "best_epoch": int(best["epoch"]), "metric": best.get("metric"),
                                         "value": best["best"]["value"]}
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
