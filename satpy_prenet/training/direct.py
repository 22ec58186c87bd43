# SPDX-License-Identifier: GPL-3.0-or-later
"""The direct fit: the same IR-only student fitted to the Full-IPR labels alone, without teacher or adaptation.

It is the baseline PRE-Net's two stages must beat ("what does the teacher buy?"): same architecture, same input
normalisation (the Swath-MPR train statistics every PRE-Net stage uses, from the same cache), same Full-IPR train
split, every parameter trained from scratch with the task loss. ``satpy-prenet-train export --from direct`` turns
its two heads into a bundle that is scored like PRE-Net's.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from satpy_prenet.data.stores import FULL_IPR, SWATH_MPR, store_path
from satpy_prenet.training.common import StageRun, size_multiple, student_network
from satpy_prenet.training.config import ModelSection
from satpy_prenet.training.datasets import cached_normalisation, open_split
from satpy_prenet.training.losses import task_loss
from satpy_prenet.training.teacher import NORMALISATION_CACHE
from satpy_prenet.training.trainer import FitResult, PlainTask, Trainer, seed_everything


class DirectTask(PlainTask):
    """Supervised fit of one student head on Full-IPR.

    Args:
        head: ``classifier`` or ``regressor``.
        model: The model section of the configuration.
    """

    stage = "direct"

    def __init__(self, head: str, model: ModelSection) -> None:
        self.head = head
        self.regressor_pixels = model.regressor_pixels
        self.model = student_network(model, head)

    def set_train_mode(self, training: bool) -> None:
        """Train or evaluate the whole student."""
        self.model.train(training)

    def training_loss(self, network: nn.Module, batch: dict[str, Any], epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        """Task loss of the student's output."""
        loss, _ = task_loss(self.head, network(batch["ir"]).out, batch["label"], self.regressor_pixels)
        return loss, {"task": loss.detach()}

    def predict(self, batch: dict[str, Any]) -> Tensor:
        """Student output in evaluation mode."""
        return self.model(batch["ir"]).out


def train_direct(run: StageRun, head: str) -> FitResult:
    """Fit the student of ``head`` directly on Full-IPR; writes ``<workdir>/checkpoints/direct-<head>/``."""
    config, model = run.config.direct, run.config.model
    statistics = cached_normalisation(run.workdir / "checkpoints" / NORMALISATION_CACHE,
                                      store_path(run.data, SWATH_MPR, "train"), SWATH_MPR, bands=model.bands,
                                      write=run.context.is_main)
    normalisation = statistics.only("ir")
    options = {"bands": model.bands, "normalisation": normalisation, "size_multiple": size_multiple(model)}
    train_set = open_split(run.data, FULL_IPR, "train", **options)
    validation_set = open_split(run.data, FULL_IPR, "validation", **options)
    seed_everything(config.seed)
    extras = {"normalisation": normalisation.to_dict(), "model_section": model.to_dict(),
              "datasets": {"train": str(train_set.path), "validation": str(validation_set.path)}}
    trainer = Trainer(DirectTask(head, model), config, train_set=train_set, validation_set=validation_set,
                      directory=run.directory("direct", head), context=run.context, extras=extras)
    return trainer.fit(resume=run.resume)
