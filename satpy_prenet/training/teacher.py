# SPDX-License-Identifier: GPL-3.0-or-later
"""Teacher stage: the multimodal UNet (IR + PMW + PR, geo late fusion) trained on Swath-MPR for one head.

The input normalisation (per channel, from the Swath-MPR train split) is computed here once, cached in
``<workdir>/checkpoints/normalisation.json`` (reused by the other head and on resume) and stored in the teacher's
checkpoints; the student stages take it from there, so teacher and student see the infrared bands alike.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import Tensor, nn

from satpy_prenet.data.stores import SWATH_MPR, store_path
from satpy_prenet.training.common import StageRun, size_multiple, teacher_network
from satpy_prenet.training.config import ModelSection
from satpy_prenet.training.datasets import cached_normalisation, open_split
from satpy_prenet.training.losses import task_loss
from satpy_prenet.training.trainer import FitResult, PlainTask, Trainer, seed_everything

LOG = logging.getLogger(__name__)

#: File (under ``<workdir>/checkpoints``) caching the normalisation statistics of the Swath-MPR train split.
NORMALISATION_CACHE = "normalisation.json"


def teacher_inputs(batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The teacher's four inputs of a Swath-MPR batch."""
    return batch["ir"], batch["pmw"], batch["pr"], batch["geo"]


class TeacherTask(PlainTask):
    """Supervised training of the multimodal teacher.

    Args:
        head: ``classifier`` or ``regressor``.
        model: The model section of the configuration.
    """

    stage = "teacher"

    def __init__(self, head: str, model: ModelSection) -> None:
        self.head = head
        self.regressor_pixels = model.regressor_pixels
        self.model = teacher_network(model, head)

    def set_train_mode(self, training: bool) -> None:
        """Train or evaluate the whole teacher."""
        self.model.train(training)

    def training_loss(self, network: nn.Module, batch: dict[str, Any], epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        """Task loss of the teacher's output."""
        loss, _ = task_loss(self.head, network(*teacher_inputs(batch)).out, batch["label"], self.regressor_pixels)
        return loss, {"task": loss.detach()}

    def predict(self, batch: dict[str, Any]) -> Tensor:
        """Teacher output in evaluation mode."""
        return self.model(*teacher_inputs(batch)).out


def train_teacher(run: StageRun, head: str) -> FitResult:
    """Train (or resume) the teacher of ``head``; writes ``<workdir>/checkpoints/teacher-<head>/``."""
    config, model = run.config.teacher, run.config.model
    normalisation = cached_normalisation(run.workdir / "checkpoints" / NORMALISATION_CACHE,
                                         store_path(run.data, SWATH_MPR, "train"), SWATH_MPR, bands=model.bands,
                                         write=run.context.is_main)
    options = {"bands": model.bands, "normalisation": normalisation, "size_multiple": size_multiple(model)}
    train_set = open_split(run.data, SWATH_MPR, "train", **options)
    validation_set = open_split(run.data, SWATH_MPR, "validation", **options)
    seed_everything(config.seed)
    task = TeacherTask(head, model)
    extras = {"normalisation": normalisation.to_dict(), "model_section": model.to_dict(),
              "datasets": {"train": str(train_set.path), "validation": str(validation_set.path)}}
    trainer = Trainer(task, config, train_set=train_set, validation_set=validation_set,
                      directory=run.directory("teacher", head), context=run.context, extras=extras)
    return trainer.fit(resume=run.resume)
