# SPDX-License-Identifier: GPL-3.0-or-later
"""MaskTune of Stage II: the per-sample masks multiplied onto F_c + F_h before the autoencoders (eq. 7-10).

Masks are made of square cells of ``cell`` input pixels, the cells RMKD masks in Stage I (the reference release
also masks Stage II on that grid), and a cell's loss is the mean task loss of its labelled pixels.

* ``self`` (Self-MaskTune): during the first K epochs nothing is masked; afterwards sample y gets the mask made from
  its task loss of the previous epoch. Rule ``quantile`` (default): a cell stays visible when its loss reaches the
  rho quantile of the sample's labelled cells, so a fraction 1 - rho of them is kept whatever the loss looks like.
  Rule ``max`` (eq. 8-9 read literally): P_max = rho * max(L), a cell stays visible where L >= P_max; one
  confidently wrong cell then sets the bar for the whole sample, and measured keep fractions fall to a few percent
  (docs/training.md). Cells without a labelled pixel carry no loss and stay visible; a sample without any loss keeps
  every cell.
* ``rand`` (Rand-MaskTune): the same schedule, but each sample's mask keeps a random set of cells of the same size
  as its Self-MaskTune mask (drawn anew every epoch from a generator seeded by seed, epoch and sample id).
* ``none`` (Non-MaskTune): never masked.

Masks are made and applied in the training process, not in DataLoader workers, and kept keyed by ``sample_id``
(bit-packed, one bit per cell). In a distributed run every process records the masks of its own samples and
`MaskTune.end_epoch` gathers them, so that every process holds the masks of all samples for the next epoch,
whichever process then draws the sample. The masks travel in the checkpoints, so a resumed run uses the same masks.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from satpy_prenet.training.config import MASKTUNE_MODES, MASKTUNE_RULES

#: Function merging the per-process dicts {sample_id: (packed mask, shape)} into one over all processes.
Gather = Callable[[dict[str, tuple[np.ndarray, tuple[int, int]]]], dict[str, tuple[np.ndarray, tuple[int, int]]]]


def cell_losses(loss_map: Tensor, counted: Tensor, cell: int) -> tuple[Tensor, Tensor]:
    """Mean loss (B, h, w) over the counted pixels of each ``cell`` x ``cell`` cell, and whether a cell has any."""
    loss_sum = F.avg_pool2d((loss_map * counted)[:, None].float(), cell, ceil_mode=True)[:, 0]
    count = F.avg_pool2d(counted[:, None].float(), cell, ceil_mode=True)[:, 0]
    return loss_sum / count.clamp_min(1e-12), count > 0


def self_masks(loss_map: Tensor, counted: Tensor, *, rho: float, rule: str = "quantile", cell: int = 1) -> Tensor:
    """Self-MaskTune cell masks (B, h, w), True where a cell stays visible.

    Args:
        loss_map: Per-pixel task loss (B, H, W).
        counted: Pixels the loss counts (B, H, W).
        rho: Quantile (rule ``quantile``) or fraction of the maximum (rule ``max``).
        rule: ``quantile`` or ``max`` (module notes).
        cell: Side of a mask cell in pixels.
    """
    if rule not in MASKTUNE_RULES:
        raise ValueError(f"unknown MaskTune rule {rule!r}; expected one of {', '.join(MASKTUNE_RULES)}")
    losses, labelled = cell_losses(loss_map.detach(), counted, cell)
    keep = torch.ones_like(labelled)
    for sample, (loss, has_label) in enumerate(zip(losses, labelled, strict=True)):
        values = loss[has_label]
        if values.numel() == 0 or not bool((values > 0).any()):
            continue
        bar = torch.quantile(values, rho) if rule == "quantile" else rho * values.max()
        keep[sample] = ~has_label | (loss >= bar)
    return keep


class MaskTune:
    """Per-sample cell masks of Stage II, keyed by sample id.

    Args:
        mode: ``self``, ``rand`` or ``none``.
        warmup_epochs: Epochs K (counted from 0) during which no mask is applied.
        rho: Quantile or fraction of the maximum, depending on ``rule``.
        rule: ``quantile`` or ``max`` (module notes).
        cell: Side of a mask cell in input pixels.
        seed: Seed of the Rand-MaskTune masks.
    """

    def __init__(self, mode: str, *, warmup_epochs: int, rho: float, rule: str = "quantile", cell: int = 1,
                 seed: int = 0) -> None:
        if mode not in MASKTUNE_MODES:
            raise ValueError(f"unknown MaskTune mode {mode!r}; expected one of {', '.join(MASKTUNE_MODES)}")
        self.mode = mode
        self.warmup_epochs = warmup_epochs
        self.rho = rho
        self.rule = rule
        self.cell = cell
        self.seed = seed
        self.masks: dict[str, np.ndarray] = {}
        self.shapes: dict[str, tuple[int, int]] = {}
        self._pending: dict[str, np.ndarray] = {}

    @property
    def records(self) -> bool:
        """Whether per-pixel losses must be recorded."""
        return self.mode != "none"

    def active(self, epoch: int) -> bool:
        """Whether masks are applied in ``epoch`` (0-based)."""
        return self.mode != "none" and epoch >= self.warmup_epochs

    def batch_mask(self, sample_ids: Sequence[str], shape: tuple[int, int], epoch: int,
                   device: torch.device) -> Tensor:
        """The pixel masks (B, 1, H, W) of a batch in ``epoch``; ones in warm-up, Non-MaskTune and for new samples.

        Raises:
            ValueError: If a stored mask has another shape than the batch's cell grid (the dataset changed).
        """
        grid = (-(-shape[0] // self.cell), -(-shape[1] // self.cell))
        cells = np.stack([self._mask(sample_id, grid, epoch) for sample_id in sample_ids])
        pixels = cells.repeat(self.cell, axis=1).repeat(self.cell, axis=2)[:, : shape[0], : shape[1]]
        return torch.from_numpy(pixels[:, None].astype(np.float32)).to(device)

    def _mask(self, sample_id: str, grid: tuple[int, int], epoch: int) -> np.ndarray:
        if not self.active(epoch) or sample_id not in self.masks:
            return np.ones(grid, bool)
        if self.shapes[sample_id] != tuple(grid):
            raise ValueError(f"the MaskTune mask of sample {sample_id!r} has {self.shapes[sample_id]} cells, the "
                             f"sample {tuple(grid)}; the dataset changed since the masks were made")
        mask = np.unpackbits(self.masks[sample_id], count=grid[0] * grid[1]).astype(bool).reshape(grid)
        if self.mode == "self":
            return mask
        key = zlib.crc32(sample_id.encode())
        rng = np.random.default_rng([self.seed, epoch, key])
        random_mask = np.zeros(mask.size, bool)
        random_mask[rng.permutation(mask.size)[: int(mask.sum())]] = True
        return random_mask.reshape(grid)

    def record(self, sample_ids: Sequence[str], loss_map: Tensor, counted: Tensor) -> None:
        """Make the Self-MaskTune masks of a batch from its per-pixel task loss (B, H, W) for the next epoch."""
        if not self.records:
            return
        masks = self_masks(loss_map.float(), counted, rho=self.rho, rule=self.rule, cell=self.cell).cpu().numpy()
        for sample_id, mask in zip(sample_ids, masks, strict=True):
            self._pending[sample_id] = np.packbits(mask.ravel())
            self.shapes[sample_id] = tuple(mask.shape)

    def end_epoch(self, gather: Gather | None = None) -> None:
        """Replace the masks by those recorded in this epoch, gathered from every process by ``gather``."""
        if not self.records:
            return
        pending = {key: (value, self.shapes[key]) for key, value in self._pending.items()}
        merged = gather(pending) if gather else pending
        for key, (value, shape) in merged.items():
            self.masks[key] = value
            self.shapes[key] = tuple(shape)
        self._pending = {}

    def digest(self) -> str:
        """SHA-256 over the sorted sample ids and their masks (to compare processes)."""
        digest = hashlib.sha256()
        for key in sorted(self.masks):
            digest.update(key.encode() + b"\0" + repr(self.shapes[key]).encode() + self.masks[key].tobytes())
        return digest.hexdigest()

    def keep_fraction(self) -> float:
        """Mean fraction of visible cells over the stored masks (NaN if there are none)."""
        if not self.masks:
            return float("nan")
        kept = sum(int(np.unpackbits(value, count=int(np.prod(self.shapes[key]))).sum())
                   for key, value in self.masks.items())
        return kept / sum(int(np.prod(shape)) for key, shape in self.shapes.items() if key in self.masks)

    def state_dict(self) -> dict[str, object]:
        """Checkpoint content: the masks as uint8 tensors and their cell-grid shapes."""
        return {"masks": {key: torch.from_numpy(value.copy()) for key, value in self.masks.items()},
                "shapes": {key: list(self.shapes[key]) for key in self.masks}}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore the masks of `state_dict`."""
        self.masks = {key: value.numpy().astype(np.uint8) for key, value in state["masks"].items()}
        self.shapes = {key: tuple(int(size) for size in shape) for key, shape in state["shapes"].items()}
        self._pending = {}
