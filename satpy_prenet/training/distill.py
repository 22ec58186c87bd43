# SPDX-License-Identifier: GPL-3.0-or-later
"""Stage I, Swath-Distilling: the IR-only student learns on Swath-MPR from the labels and the frozen teacher.

Loss = task + lambda_kd * feature KD + gamma_rec * reconstruction (losses.py), plus lambda_response * response
KD where that option (not in the paper) is set; a student without autoencoders (the ``rmkd: false`` ablation) has no
reconstruction term. The teacher of the same head is
read from its ``best.pt``, kept in evaluation mode and run under ``no_grad``. The distillation losses count only
the real footprints of a tile, not its across-track padding (the batch's ``footprint``). RMKD (the coordinated
mask and the split views) and DAWE act inside the student in training mode.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn

from satpy_prenet.data.stores import SWATH_MPR
from satpy_prenet.training.common import (
    StageRun,
    load_stage_weights,
    restore_weights,
    size_multiple,
    student_network,
    teacher_network,
)
from satpy_prenet.training.config import ModelSection, StageConfig
from satpy_prenet.training.datasets import Normalisation, open_split
from satpy_prenet.training.losses import feature_kd, reconstruction_loss, response_kd, task_loss
from satpy_prenet.training.teacher import teacher_inputs
from satpy_prenet.training.trainer import FitResult, PlainTask, Trainer, seed_everything

LOG = logging.getLogger(__name__)


class DistillTask(PlainTask):
    """Swath-Distilling of one head.

    Args:
        head: ``classifier`` or ``regressor``.
        model: The model section of the configuration.
        config: The distill stage configuration (loss weights, temperature).
        teacher: The trained teacher of the same head (frozen here).

    Raises:
        ValueError: If the student's feature widths at strides 2, 4, 8 differ from the teacher's.
    """

    stage = "distill"

    def __init__(self, head: str, model: ModelSection, config: StageConfig, teacher: nn.Module) -> None:
        self.head = head
        self.regressor_pixels = model.regressor_pixels
        self.config = config
        self.model = student_network(model, head)
        student_widths = self.model.config.widths[1:4]
        teacher_widths = teacher.config.widths[1:4]
        if tuple(student_widths) != tuple(teacher_widths):
            raise ValueError(f"student feature widths {student_widths} differ from the teacher's {teacher_widths}")
        self.teacher = teacher.eval().requires_grad_(False)
        self.loss_weights = {"kd": config.lambda_kd, "rec": config.gamma_rec, "response": config.lambda_response}

    def set_train_mode(self, training: bool) -> None:
        """Train or evaluate the student; the teacher always evaluates."""
        self.model.train(training)
        self.teacher.eval()

    def training_loss(self, network: nn.Module, batch: dict[str, Any], epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        """Task + lambda * KD + gamma * reconstruction (+ lambda_response * response KD)."""
        self.teacher.to(batch["ir"].device)
        with torch.no_grad():
            teacher_output = self.teacher(*teacher_inputs(batch))
        teacher_features = teacher_output.features
        output = network(batch["ir"])
        task, _ = task_loss(self.head, output.out, batch["label"], self.regressor_pixels)
        footprint = batch.get("footprint")
        kd = feature_kd(output.features, teacher_features, temperature=self.config.kd_temperature,
                        weights=self.config.kd_scale_weights, footprint=footprint)
        rec = (reconstruction_loss(output.reconstructions, teacher_features, footprint=footprint)
               if output.reconstructions else task.new_zeros(()))
        total = task + self.config.lambda_kd * kd + self.config.gamma_rec * rec
        terms = {"task": task.detach(), "kd": kd.detach(), "rec": rec.detach()}
        if self.config.lambda_response:
            response = response_kd(self.head, output.out, teacher_output.out,
                                   temperature=self.config.kd_temperature, footprint=footprint)
            total = total + self.config.lambda_response * response
            terms["response"] = response.detach()
        return total, terms

    def predict(self, batch: dict[str, Any]) -> Tensor:
        """Student output from the infrared alone, in evaluation mode."""
        return self.model(batch["ir"]).out


def train_distill(run: StageRun, head: str) -> FitResult:
    """Distil the student of ``head`` from its teacher; writes ``<workdir>/checkpoints/distill-<head>/``."""
    config, model = run.config.distill, run.config.model
    teacher_state = load_stage_weights(run, "teacher", head)
    teacher = teacher_network(model, head)
    restore_weights(teacher, teacher_state, run.directory("teacher", head) / "best.pt")
    normalisation = Normalisation.from_dict(teacher_state["normalisation"])
    options = {"bands": model.bands, "normalisation": normalisation, "size_multiple": size_multiple(model)}
    train_set = open_split(run.data, SWATH_MPR, "train", **options)
    validation_set = open_split(run.data, SWATH_MPR, "validation", **options)
    seed_everything(config.seed)
    task = DistillTask(head, model, config, teacher)
    extras = {"normalisation": normalisation.to_dict(), "model_section": model.to_dict(),
              "datasets": {"train": str(train_set.path), "validation": str(validation_set.path)}}
    trainer = Trainer(task, config, train_set=train_set, validation_set=validation_set,
                      directory=run.directory("distill", head), context=run.context, extras=extras)
    return trainer.fit(resume=run.resume)
