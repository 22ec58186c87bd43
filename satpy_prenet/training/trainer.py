# SPDX-License-Identifier: GPL-3.0-or-later
"""The training loop shared by the stages: epochs, mixed precision, DDP, validation, checkpoints and resume.

A stage hands the loop a `StageTask` (the network to train, how to compute its loss and predictions, and its own
per-epoch hooks, such as Stage II's MaskTune masks); the loop owns everything else. Per epoch it trains over the
train split (a `DistributedSampler` in every run, so that one process and several see the same global batches),
calls the task's end-of-epoch hook, validates, writes ``last.pt`` (and ``best.pt`` when the validation score
improved), then appends one JSON line to ``metrics.jsonl``: the learning rate, the mean of every loss part, the
weighted terms that make up the loss, the mean gradient norm of every module group (before clipping), the
validation scores and what the task's hook reports. Every (re)start cuts the log back to the epochs of the
checkpoint, so it never holds an epoch twice. ``resume=True`` restores ``last.pt`` (weights, optimizer, scheduler,
scaler, random generators, the task's state, best score) and continues with the next epoch, which gives the same
result as an uninterrupted run (on the CPU; on CUDA only with deterministic algorithms).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils import get_total_norm
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm import tqdm

from satpy_prenet.training.checkpoints import (
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from satpy_prenet.training.config import StageConfig
from satpy_prenet.training.distributed import DistContext
from satpy_prenet.training.validation import ValidationScores, selection_metric

LOG = logging.getLogger(__name__)

#: Keys of the stage configuration that may change between a run and its resumption.
RESUMABLE_CHANGES = ("epochs", "num_workers", "max_steps_per_epoch")
#: Keys of the model section that must not change between a run and its resumption.
MODEL_KEYS = ("preset", "bands", "regressor_pixels", "architecture")
#: Checkpoint entries a resumption needs.
RESUME_KEYS = ("model", "optimizer", "scheduler", "scaler", "rng", "task", "best", "config", "epoch")


class StageTask(Protocol):
    """What a stage gives the loop.

    Attributes:
        stage: Stage name (``teacher``, ``distill``, ``adapt``).
        head: ``classifier`` or ``regressor``.
        model: The module whose trainable parameters are optimised and checkpointed.
        regressor_pixels: Pixels the regressor's loss counts.
        loss_weights: Weight of each loss part in the total (parts not named weigh 1), for the logged terms.
    """

    stage: str
    head: str
    model: nn.Module
    regressor_pixels: str
    loss_weights: dict[str, float]

    def set_train_mode(self, training: bool) -> None:
        """Put the model in training (True) or evaluation mode."""

    def training_loss(self, network: nn.Module, batch: dict[str, Any], epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss and its unweighted named parts for a batch on the device in ``epoch`` (0-based)."""

    def predict(self, batch: dict[str, Any]) -> Tensor:
        """Network output of a batch in evaluation mode."""

    def end_epoch(self, context: DistContext) -> dict[str, Any]:
        """Called after every training epoch on every process; returns what the epoch's log line adds."""

    def state_dict(self) -> dict[str, Any] | None:
        """What the task keeps in the checkpoints beyond the weights (None: nothing)."""

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore what `state_dict` gave."""


class PlainTask:
    """The hooks of a task that keeps nothing between epochs (teacher, Stage I)."""

    loss_weights: dict[str, float] = {}

    def end_epoch(self, context: DistContext) -> dict[str, Any]:
        """Nothing to add to the log."""
        return {}

    def state_dict(self) -> None:
        """Nothing to checkpoint."""
        return None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Nothing to restore."""


def parameter_group(name: str) -> str:
    """The module group of a parameter for the gradient-norm log: ``lora`` for LoRA adapters, else its top module."""
    name = name.removeprefix("base_model.model.")
    return "lora" if "lora_" in name else name.split(".")[0]


@dataclass
class FitResult:
    """Outcome of a stage.

    Attributes:
        directory: Folder of the checkpoints and the metrics log.
        epochs: Completed epochs.
        best_epoch: Epoch (1-based) of ``best.pt``.
        metric: Name of the selection score.
        best_value: Its value at the best epoch.
        history: One dict per epoch of this call (what metrics.jsonl got).
    """

    directory: Path
    epochs: int
    best_epoch: int
    metric: str
    best_value: float
    history: list[dict[str, Any]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(parameters: list[nn.Parameter], config: StageConfig) -> torch.optim.Optimizer:
    """RMSprop (the paper's, with the stage's momentum) or AdamW, with the stage's learning rate and weight decay."""
    if not parameters:
        raise ValueError("the stage has no trainable parameter")
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=config.lr, weight_decay=config.weight_decay,
                                   momentum=config.momentum)
    return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, config: StageConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """Halve the learning rate every ``lr_halving_epochs`` epochs (constant when 0); stepped once per epoch."""
    if config.lr_halving_epochs:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_halving_epochs, gamma=0.5)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


def move(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move the tensors of a batch to ``device``."""
    return {key: value.to(device, non_blocking=True) if isinstance(value, Tensor) else value
            for key, value in batch.items()}


def data_loader(dataset: Dataset, batch_size: int, *, num_workers: int, device: torch.device,
                sampler: DistributedSampler | None = None) -> DataLoader:
    """Batches of ``dataset`` in order (or in the order of ``sampler``), pinned in memory for CUDA."""
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=num_workers,
                      pin_memory=device.type == "cuda")


def is_better(value: float, best: float | None, higher: bool) -> bool:
    """Whether ``value`` beats ``best`` (a finite value beats None and NaN)."""
    if best is None or math.isnan(best):
        return True
    if math.isnan(value):
        return False
    return value > best if higher else value < best


class Trainer:
    """Train a `StageTask` for the epochs of its stage configuration.

    Args:
        task: The stage's network, loss and predictions.
        config: Hyper-parameters of the stage.
        train_set: Training samples (dicts with ``sample_id`` and ``label``).
        validation_set: Validation samples.
        directory: Output folder (``<workdir>/checkpoints/<stage>-<head>``).
        context: Distributed context (rank, world size, device).
        extras: Plain values stored in every checkpoint (normalisation, configuration, inputs).
    """

    def __init__(self, task: StageTask, config: StageConfig, *, train_set: Dataset, validation_set: Dataset,
                 directory: Path, context: DistContext, extras: dict[str, Any] | None = None) -> None:
        if config.batch_size % context.world_size:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by the {context.world_size} processes")
        self.task, self.config, self.context = task, config, context
        self.directory = Path(directory)
        self.extras = extras or {}
        self.metric, self.higher = selection_metric(task.head, config.validation_metric)
        task.model.to(context.device)
        trained = [(name, parameter) for name, parameter in task.model.named_parameters() if parameter.requires_grad]
        self.parameters = [parameter for _, parameter in trained]
        self.groups: dict[str, list[nn.Parameter]] = defaultdict(list)
        for name, parameter in trained:
            self.groups[parameter_group(name)].append(parameter)
        self.optimizer = make_optimizer(self.parameters, config)
        self.scheduler = make_scheduler(self.optimizer, config)
        cuda = context.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16
        self.amp = config.amp and cuda
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)
        self.network = (DistributedDataParallel(task.model, device_ids=[context.device] if cuda else None)
                        if context.distributed else task.model)
        self.sampler = DistributedSampler(train_set, num_replicas=context.world_size, rank=context.rank,
                                          shuffle=True, seed=config.seed)
        self.train_loader = self._loader(train_set, self.sampler)
        shard = Subset(validation_set, list(range(context.rank, len(validation_set), context.world_size)))
        self.validation_loader = self._loader(shard, None)
        self.best: dict[str, Any] = {"epoch": 0, "value": None}
        self.start_epoch = 0

    def _loader(self, dataset: Dataset, sampler: DistributedSampler | None) -> DataLoader:
        return data_loader(dataset, self.config.batch_size // self.context.world_size,
                           num_workers=self.config.num_workers, device=self.context.device, sampler=sampler)

    @property
    def last_path(self) -> Path:
        """The checkpoint of the latest completed epoch."""
        return self.directory / "last.pt"

    @property
    def best_path(self) -> Path:
        """The checkpoint of the epoch with the best validation score."""
        return self.directory / "best.pt"

    @property
    def metrics_path(self) -> Path:
        """The JSON-lines log of the epochs."""
        return self.directory / "metrics.jsonl"

    def fit(self, *, resume: bool = False) -> FitResult:
        """Train (or continue with ``resume``) until ``config.epochs`` epochs are complete.

        Raises:
            CheckpointError: If a previous run's checkpoint exists and ``resume`` is not set, or the checkpoint to
                resume is unreadable or of another configuration.
        """
        if resume and self.last_path.is_file():
            self._restore(load_checkpoint(self.last_path, stage=self.task.stage, head=self.task.head))
        elif self.last_path.is_file():
            raise CheckpointError(f"{self.last_path}: a previous run exists; pass --resume to continue it, or remove "
                                  f"{self.directory} to start again")
        elif resume:
            LOG.warning("%s: nothing to resume, starting %s-%s from scratch", self.last_path, self.task.stage,
                        self.task.head)
        if self.context.is_main:
            _truncate_log(self.metrics_path, self.start_epoch)
        history = []
        for epoch in range(self.start_epoch, self.config.epochs):
            history.append(self._epoch(epoch))
        if self.start_epoch >= self.config.epochs:
            LOG.info("%s-%s: already trained for %d epochs", self.task.stage, self.task.head, self.start_epoch)
        return FitResult(self.directory, max(self.start_epoch, self.config.epochs), self.best["epoch"], self.metric,
                         self.best["value"], history)

    def _epoch(self, epoch: int) -> dict[str, Any]:
        started = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        means, steps = self._train_epoch(epoch)
        self.context.average_buffers(self.task.model)
        hooked = self.task.end_epoch(self.context)
        self.scheduler.step()
        validation = self._validate()
        train = {name: value for name, value in means.items() if not name.startswith("grad/")}
        terms = {name: self.task.loss_weights.get(name, 1.0) * value for name, value in train.items() if name != "loss"}
        record = {"epoch": epoch + 1, "lr": lr, "train": train, "terms": terms,
                  "grad_norm": {name[5:]: value for name, value in means.items() if name.startswith("grad/")},
                  "validation": validation, "steps": steps, "seconds": round(time.perf_counter() - started, 3),
                  **hooked}
        improved = is_better(validation[self.metric], self.best["value"], self.higher)
        if improved:
            self.best = {"epoch": epoch + 1, "value": validation[self.metric]}
        LOG.info("%s-%s epoch %d/%d: train %s; validation %s", self.task.stage, self.task.head, epoch + 1,
                 self.config.epochs, _short(train), _short(validation))
        if self.context.is_main:
            self._write(epoch + 1, record, improved)
        self.context.barrier()
        return record

    def _train_epoch(self, epoch: int) -> tuple[dict[str, float], int]:
        self.task.set_train_mode(True)
        self.sampler.set_epoch(epoch)
        sums: dict[str, Tensor] = defaultdict(lambda: torch.zeros((), dtype=torch.float64))
        steps = 0
        total = len(self.train_loader) if self.config.max_steps_per_epoch is None else min(
            len(self.train_loader), self.config.max_steps_per_epoch)
        bar = tqdm(self.train_loader, total=total, desc=f"{self.task.stage}-{self.task.head} {epoch + 1}",
                   unit="batch", leave=False, disable=not self.context.is_main)
        for batch in bar:
            if steps == total:
                break
            parts = self._step(move(batch, self.context.device), epoch)
            for name, value in parts.items():
                sums[name] += value.detach().double().cpu()
            steps += 1
            bar.set_postfix(loss=f"{parts['loss'].item():.4g}")
        bar.close()
        names = sorted(sums)
        counts = torch.tensor([float(steps)], dtype=torch.float64)
        reduced = self.context.all_reduce_sum(torch.cat([torch.stack([sums[name] for name in names]), counts]))
        return {name: float(reduced[i] / reduced[-1]) for i, name in enumerate(names)}, steps

    def _step(self, batch: dict[str, Any], epoch: int) -> dict[str, Tensor]:
        autocast = (torch.autocast("cuda", dtype=self.amp_dtype) if self.amp else nullcontext())
        with autocast:
            loss, parts = self.task.training_loss(self.network, batch, epoch)
        self._check_finite(loss, epoch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        norms = self._gradient_norms()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return {"loss": loss.detach(), **{name: value.detach() for name, value in parts.items()}, **norms}

    def _gradient_norms(self) -> dict[str, Tensor]:
        """L2 norm of the (unscaled) gradients of each module group, keyed ``grad/<group>``."""
        return {f"grad/{group}": get_total_norm([parameter.grad for parameter in parameters
                                                 if parameter.grad is not None]).float().cpu()
                for group, parameters in self.groups.items()}

    def _check_finite(self, loss: Tensor, epoch: int) -> None:
        """Raise on every process if the (unscaled) loss of any process is not finite, before the backward pass.

        The flag is summed over the processes first, so that all of them stop together instead of the others
        waiting in DDP's gradient all-reduce. An overflow of the float16 gradient scaler's scaled gradients is not an
        error: the scaler skips that step and lowers its scale.
        """
        bad = torch.tensor([0.0 if torch.isfinite(loss.detach()).item() else 1.0], dtype=torch.float64)
        processes = int(self.context.all_reduce_sum(bad).item())
        if processes:
            raise FloatingPointError(f"{self.task.stage}-{self.task.head}: the loss became non-finite on {processes} "
                                     f"process(es) in epoch {epoch + 1} (here: {loss.item()}); lower the learning "
                                     "rate or check the inputs")

    @torch.no_grad()
    def _validate(self) -> dict[str, float]:
        self.task.set_train_mode(False)
        scores = ValidationScores(self.task.head, self.task.regressor_pixels)
        for step, batch in enumerate(self.validation_loader):
            if self.config.max_steps_per_epoch is not None and step == self.config.max_steps_per_epoch:
                break
            batch = move(batch, self.context.device)
            with torch.autocast("cuda", dtype=self.amp_dtype) if self.amp else nullcontext():
                output = self.task.predict(batch)
            scores.update(output.float(), batch["label"])
        scores.sums = self.context.all_reduce_sum(scores.sums)
        return scores.result()

    def _state(self, epoch: int) -> dict[str, Any]:
        return {"stage": self.task.stage, "head": self.task.head, "epoch": epoch,
                "model": self.task.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "rng": rng_state(),
                "task": self.task.state_dict(),
                "best": dict(self.best), "metric": self.metric, "config": self.config.to_dict(), **self.extras}

    def _write(self, epoch: int, record: dict[str, Any], improved: bool) -> None:
        state = self._state(epoch)
        if improved:
            save_checkpoint(self.best_path, state)
        save_checkpoint(self.last_path, state)
        with self.metrics_path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(record, default=float) + "\n")

    def _restore(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (of ``last.pt``).

        Raises:
            CheckpointError: Naming ``last.pt``, if it lacks an entry, was made with another stage configuration
                (beyond `RESUMABLE_CHANGES`) or model section (`MODEL_KEYS`), or its states do not fit.
        """
        missing = [key for key in RESUME_KEYS if key not in state]
        if missing:
            raise CheckpointError(f"{self.last_path}: cannot resume, the checkpoint lacks {', '.join(missing)}")
        self._check_unchanged(state)
        try:
            self.task.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
            set_rng_state(state["rng"])
            self.task.load_state_dict(state["task"])
            self.best = {"epoch": int(state["best"]["epoch"]), "value": state["best"]["value"]}
            self.start_epoch = int(state["epoch"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
            raise CheckpointError(f"{self.last_path}: cannot resume, the checkpoint does not fit this run "
                                  f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
                                  ) from error
        LOG.info("Resuming %s-%s after epoch %d from %s", self.task.stage, self.task.head, self.start_epoch,
                 self.last_path)


    def _check_unchanged(self, state: dict[str, Any]) -> None:
        """Raise a CheckpointError if the stage configuration or the model section differ from ``state``'s."""
        saved = state["config"] if isinstance(state["config"], dict) else {}
        changed = sorted(key for key, value in self.config.to_dict().items()
                         if key not in RESUMABLE_CHANGES and saved.get(key) != value)
        if changed:
            raise CheckpointError(f"{self.last_path}: cannot resume with a changed configuration ({', '.join(changed)}"
                                  f"); only {', '.join(RESUMABLE_CHANGES)} may change")
        wanted = self.extras.get("model_section")
        if wanted is None:
            return
        trained = state.get("model_section") if isinstance(state.get("model_section"), dict) else {}
        trained = {"architecture": {}, **trained}  # checkpoints before the ablations lack it
        changed = [key for key in MODEL_KEYS if trained.get(key) != wanted.get(key)]
        if changed:
            raise CheckpointError(f"{self.last_path}: cannot resume, the model section changed ("
                                  + ", ".join(f"{key}: {trained.get(key)} -> {wanted.get(key)}" for key in changed)
                                  + f"); remove {self.directory} to start again")


def _truncate_log(path: Path, epochs: int) -> None:
    """Keep only the log lines of epochs up to ``epochs`` (those with a checkpoint); drop malformed lines."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if _logged_epoch(line) <= epochs]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)


def _logged_epoch(line: str) -> float:
    """Epoch of a metrics.jsonl line (infinity for a blank or malformed line, which is dropped)."""
    try:
        return float(json.loads(line)["epoch"])
    except (ValueError, KeyError, TypeError):
        return math.inf


def _short(values: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.4g}" for name, value in values.items() if isinstance(value, float))
