# SPDX-License-Identifier: GPL-3.0-or-later
"""Stage II, Full-Disc Adaptation: the distilled student adapts to full-disc IR (Full-IPR) with LoRA and MaskTune.

The student of Stage I (its ``best.pt``) gets LoRA adapters on its autoencoders (lora.py says what trains and
what is frozen); the loss is the task loss alone (eq. 10), with the MaskTune masks of the configured mode applied
before the autoencoders (masktune.py). The checkpoints hold the adapted model with its adapters unmerged; export
merges them. Inputs are normalised with the statistics carried from the teacher through Stage I.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import Tensor, nn

from satpy_prenet.data.stores import FULL_IPR
from satpy_prenet.training.common import (
    StageRun,
    load_stage_weights,
    restore_weights,
    size_multiple,
    student_config,
    student_network,
)
from satpy_prenet.training.config import ModelSection, StageConfig
from satpy_prenet.training.datasets import Normalisation, open_split
from satpy_prenet.training.distributed import DistContext
from satpy_prenet.training.lora import add_lora, set_train_mode
from satpy_prenet.training.losses import counted_pixels, task_loss
from satpy_prenet.training.masktune import MaskTune
from satpy_prenet.training.trainer import FitResult, Trainer, seed_everything

LOG = logging.getLogger(__name__)


def adapted_network(model: ModelSection, config: StageConfig, head: str, distilled: dict[str, Any],
                    source: str) -> nn.Module:
    """The Stage I student of ``head`` with its weights from ``distilled`` and LoRA adapters added."""
    network = student_network(model, head)
    restore_weights(network, distilled, source)
    return add_lora(network, rank=config.lora_rank, alpha=config.lora_alpha, reinit_decoder=config.reinit_decoder)


class AdaptTask:
    """Full-Disc Adaptation of one head, with the MaskTune masks as its own state.

    Args:
        head: ``classifier`` or ``regressor``.
        model: The model section of the configuration.
        network: The student with LoRA adapters (`adapted_network`).
        masktune: The masks of the configured MaskTune mode.
    """

    stage = "adapt"
    loss_weights: dict[str, float] = {}

    def __init__(self, head: str, model: ModelSection, network: nn.Module, masktune: MaskTune,
                 batchnorm_statistics: str = "train") -> None:
        self.head = head
        self.regressor_pixels = model.regressor_pixels
        self.model = network
        self.masktune = masktune
        self.batchnorm_statistics = batchnorm_statistics

    def set_train_mode(self, training: bool) -> None:
        """Train the adapters, decoder and head; keep the encoder (and, when frozen, batch norm) in evaluation mode."""
        set_train_mode(self.model, training)
        if self.batchnorm_statistics == "frozen":
            for module in self.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def training_loss(self, network: nn.Module, batch: dict[str, Any], epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        """Task loss with the epoch's MaskTune mask before the autoencoders; records the next epoch's masks."""
        label = batch["label"]
        mask = self.masktune.batch_mask(batch["sample_id"], tuple(label.shape[-2:]), epoch, label.device)
        loss, loss_map = task_loss(self.head, network(batch["ir"], mask=mask).out, label, self.regressor_pixels)
        self.masktune.record(batch["sample_id"], loss_map.detach(),
                             counted_pixels(self.head, label, self.regressor_pixels))
        return loss, {"task": loss.detach()}

    def predict(self, batch: dict[str, Any]) -> Tensor:
        """Adapted student output without any mask, as at inference."""
        return self.model(batch["ir"]).out

    def end_epoch(self, context: DistContext) -> dict[str, Any]:
        """Gather the masks recorded in the epoch from every process; log their count, digest and visible fraction.

        Raises:
            RuntimeError: If the processes hold different masks afterwards.
        """
        if not self.masktune.records:
            return {}
        self.masktune.end_epoch(context.merge_dicts)
        digests = context.all_gather_object(self.masktune.digest())
        if len(set(digests)) != 1:
            raise RuntimeError("the MaskTune masks differ between processes")
        return {"masks": {"count": len(self.masktune.masks), "sha256": digests[0],
                          "keep_fraction": self.masktune.keep_fraction()}}

    def state_dict(self) -> dict[str, Any]:
        """The masks, for the checkpoints."""
        return self.masktune.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore the masks of a checkpoint."""
        if state is not None:
            self.masktune.load_state_dict(state)


def train_adapt(run: StageRun, head: str) -> FitResult:
    """Adapt the distilled student of ``head``; writes ``<workdir>/checkpoints/adapt-<head>/``."""
    config, model = run.config.adapt, run.config.model
    distilled = load_stage_weights(run, "distill", head)
    normalisation = Normalisation.from_dict(distilled["normalisation"]).only("ir")
    options = {"bands": model.bands, "normalisation": normalisation, "size_multiple": size_multiple(model)}
    train_set = open_split(run.data, FULL_IPR, "train", **options)
    validation_set = open_split(run.data, FULL_IPR, "validation", **options)
    seed_everything(config.seed)
    network = adapted_network(model, config, head, distilled, str(run.directory("distill", head) / "best.pt"))
    masktune = MaskTune(config.masktune, warmup_epochs=config.warmup_epochs, rho=config.rho,
                        rule=config.masktune_rule, cell=student_config(model).mask_cell, seed=config.seed)
    extras = {"normalisation": normalisation.to_dict(), "model_section": model.to_dict(),
              "datasets": {"train": str(train_set.path), "validation": str(validation_set.path)}}
    task = AdaptTask(head, model, network, masktune, config.batchnorm_statistics)
    trainer = Trainer(task, config, train_set=train_set, validation_set=validation_set,
                      directory=run.directory("adapt", head), context=run.context, extras=extras)
    return trainer.fit(resume=run.resume)
