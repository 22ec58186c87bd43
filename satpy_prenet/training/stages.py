# SPDX-License-Identifier: GPL-3.0-or-later
"""The stages by name and `run_stage`, the one entry the command line (and any pipeline) calls.

Order of a full training: ``teacher`` -> ``distill`` -> ``adapt`` -> ``export`` (:data:`PIPELINE`); every training
stage runs once per head. ``direct`` fits the same student to Full-IPR alone, the baseline of the two stages
(``export`` with ``source="direct"`` makes its bundle). Outputs:
``<workdir>/checkpoints/<stage>-<head>/{last.pt,best.pt,metrics.jsonl}`` and ``<workdir>/prenet-<preset>.safetensors``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from satpy_prenet.training.adapt import train_adapt
from satpy_prenet.training.common import StageRun
from satpy_prenet.training.config import HEADS, TrainingConfig
from satpy_prenet.training.direct import train_direct
from satpy_prenet.training.distill import train_distill
from satpy_prenet.training.distributed import init_distributed
from satpy_prenet.training.export import export_bundle
from satpy_prenet.training.teacher import train_teacher
from satpy_prenet.training.trainer import FitResult

LOG = logging.getLogger(__name__)

#: Training stages and the function training one head.
TRAINERS: dict[str, Callable[[StageRun, str], FitResult]] = {
    "teacher": train_teacher,
    "distill": train_distill,
    "adapt": train_adapt,
    "direct": train_direct,
}
#: Every stage of PRE-Net, in the order a full training runs them.
PIPELINE = ("teacher", "distill", "adapt", "export")
#: Sources of an exported bundle: PRE-Net's adapted heads, or the direct fit's.
EXPORT_SOURCES = ("adapt", "direct")


def default_data(workdir: str | os.PathLike) -> Path:
    """Default dataset root: ``<workdir>/datasets``."""
    return Path(workdir) / "datasets"


def run_stage(name: str, config: TrainingConfig, workdir: str | os.PathLike, *,
              data: str | os.PathLike | None = None, heads: Sequence[str] = HEADS, resume: bool = False,
              device: str = "auto", source: str = "adapt") -> dict[str, Any]:
    """Run one stage.

    Args:
        name: ``teacher``, ``distill``, ``adapt``, ``direct`` or ``export``.
        config: The training configuration.
        workdir: Output folder.
        data: Dataset root (default ``<workdir>/datasets``).
        heads: Heads to train (training stages; export always takes both).
        resume: Continue every head from its ``last.pt``.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; under ``torchrun`` each process takes its local GPU.
        source: The heads export makes the bundle of (``adapt`` or ``direct``).

    Returns:
        For a training stage, ``{head: FitResult}``; for export, ``{"bundle": path}``. Export is meant to run
        without ``torchrun``; under it, rank 0 exports and the other processes return ``{"bundle": None}`` at once
        (no barrier that could time out while rank 0 scores the test split).

    Raises:
        ValueError: For an unknown stage or head.
    """
    if name != "export" and name not in TRAINERS:
        raise ValueError(f"unknown stage {name!r}; expected one of {', '.join([*TRAINERS, 'export'])}")
    if source not in EXPORT_SOURCES:
        raise ValueError(f"unknown export source {source!r}; expected one of {', '.join(EXPORT_SOURCES)}")
    unknown = [head for head in heads if head not in HEADS]
    if unknown:
        raise ValueError(f"unknown head(s) {', '.join(unknown)}; expected {', '.join(HEADS)}")
    workdir = Path(workdir)
    run = StageRun(config=config, workdir=workdir, data=Path(data) if data else default_data(workdir),
                   context=init_distributed(device), resume=resume)
    if name == "export":
        return {"bundle": export_bundle(run, source) if run.context.is_main else None}
    return {head: TRAINERS[name](run, head) for head in heads}
