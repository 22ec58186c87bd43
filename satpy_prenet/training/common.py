# SPDX-License-Identifier: GPL-3.0-or-later
"""What every stage needs: the run description, the networks of a head, and weights from earlier stages."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from torch import nn

from satpy_prenet.model import MultimodalTeacher, PRENet, PRENetConfig, preset, teacher_preset
from satpy_prenet.training.checkpoints import CheckpointError, load_checkpoint, stage_dir
from satpy_prenet.training.config import ModelSection, TrainingConfig
from satpy_prenet.training.distributed import DistContext

#: Output channels of each head.
OUT_CHANNELS = {"classifier": 2, "regressor": 1}


@dataclass(frozen=True)
class StageRun:
    """One invocation of a stage.

    Attributes:
        config: The training configuration.
        workdir: Output folder (checkpoints, bundle).
        data: Dataset root holding ``swath_mpr/`` and ``full_ipr/``.
        context: Distributed context (rank, world size, device).
        resume: Continue from the stage's ``last.pt``.
    """

    config: TrainingConfig
    workdir: Path
    data: Path
    context: DistContext
    resume: bool = False

    def directory(self, stage: str, head: str) -> Path:
        """Checkpoint folder of ``stage`` and ``head``."""
        return stage_dir(self.workdir, stage, head)


def student_config(model: ModelSection, head: str = "classifier") -> PRENetConfig:
    """The student architecture of the configured preset and bands for ``head``."""
    return replace(preset(model.preset, in_channels=len(model.bands), out_channels=OUT_CHANNELS[head]),
                   **model.architecture)


def student_network(model: ModelSection, head: str) -> PRENet:
    """A fresh student PRE-Net of the configured preset and bands for ``head``."""
    return PRENet(student_config(model, head))


def teacher_network(model: ModelSection, head: str) -> MultimodalTeacher:
    """A fresh multimodal teacher with the widths of the student's preset for ``head``."""
    return MultimodalTeacher(teacher_preset(model.preset, out_channels=OUT_CHANNELS[head],
                                            ir_channels=len(model.bands)))


def size_multiple(model: ModelSection) -> int:
    """Factor the student (and so every stage's tiles) needs heights and widths to be multiples of."""
    return student_config(model).size_multiple


def load_stage_weights(run: StageRun, stage: str, head: str, *, which: str = "best",
                       mmap: bool = False) -> dict[str, Any]:
    """Read the ``best`` (or ``last``) checkpoint of an earlier stage and check it fits this configuration.

    ``mmap`` maps the tensors from the file instead of reading them (for metadata).

    Raises:
        CheckpointError: If it is missing or unreadable, or was trained with another preset or other bands.
    """
    path = run.directory(stage, head) / f"{which}.pt"
    state = load_checkpoint(path, stage=stage, head=head, mmap=mmap)
    trained = {"architecture": {}, **state.get("model_section", {})}  # checkpoints before the ablations lack it
    wanted = run.config.model.to_dict()
    keys = ("preset", "bands") if stage == "teacher" else ("preset", "bands", "architecture")  # the student's only
    for key in keys:
        if trained.get(key) != wanted[key]:
            raise CheckpointError(f"{path}: trained with {key} {trained.get(key)}, but the config asks for "
                                  f"{wanted[key]}; rerun the {stage} stage with this config")
    return state


def restore_weights(network: nn.Module, state: dict[str, Any], source: str | Path) -> None:
    """Load ``state['model']`` into ``network``, naming ``source`` if the weights do not fit."""
    try:
        network.load_state_dict(state["model"])
    except RuntimeError as error:
        raise CheckpointError(f"{source}: the weights do not fit the network ({str(error).splitlines()[0]})") from error
