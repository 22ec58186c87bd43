# SPDX-License-Identifier: GPL-3.0-or-later
"""MaskTune of Stage II: the per-sample masks multiplied onto F_c + F_h before the autoencoders (eq. 7-10).

* ``self`` (Self-MaskTune): during the first K epochs nothing is masked; afterwards sample y gets the mask made from
  its per-pixel task loss L of the previous epoch: P_max = rho * max(L), M = 1 where L >= P_max, else 0.
* ``rand`` (Rand-MaskTune): the same schedule, but each sample's mask keeps a random set of pixels of the same size
  as its Self-MaskTune mask (drawn anew every epoch from a generator seeded by seed, epoch and sample id).
* ``none`` (Non-MaskTune): never masked.

Masks are made and applied in the training process, not in DataLoader workers, and kept keyed by ``sample_id``
(bit-packed). In a distributed run every process records the masks of its own samples and `MaskTune.end_epoch`
gathers them, so that every process holds the masks of all samples for the next epoch, whichever process then
draws the sample. The masks travel in the checkpoints, so a resumed run uses the same masks.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from satpy_prenet.training.config import MASKTUNE_MODES

#: Function merging the per-process dicts {sample_id: (packed mask, shape)} into one over all processes.
Gather = Callable[[dict[str, tuple[np.ndarray, tuple[int, int]]]], dict[str, tuple[np.ndarray, tuple[int, int]]]]


def self_masks(loss_map: Tensor, rho: float) -> Tensor:
    """Self-MaskTune masks (B, H, W), True where the per-pixel loss is at least rho times the sample's maximum.

    A sample whose loss is 0 everywhere (nothing labelled) keeps every pixel.
    """
    peak = loss_map.flatten(1).amax(dim=1).view(-1, 1, 1)
    return loss_map >= rho * peak


class MaskTune:
    """Per-sample masks of Stage II, keyed by sample id.

    Args:
        mode: ``self``, ``rand`` or ``none``.
        warmup_epochs: Epochs K (counted from 0) during which no mask is applied.
        rho: Fraction of the sample's largest loss from which a pixel is kept.
        seed: Seed of the Rand-MaskTune masks.
    """

    def __init__(self, mode: str, *, warmup_epochs: int, rho: float, seed: int = 0) -> None:
        if mode not in MASKTUNE_MODES:
            raise ValueError(f"unknown MaskTune mode {mode!r}; expected one of {', '.join(MASKTUNE_MODES)}")
        self.mode = mode
        self.warmup_epochs = warmup_epochs
        self.rho = rho
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
        """The masks (B, 1, H, W) for a batch in ``epoch``: ones during warm-up, for Non-MaskTune and unseen samples.

        Raises:
            ValueError: If a stored mask has another shape than the batch (the dataset changed).
        """
        masks = [self._mask(sample_id, shape, epoch) for sample_id in sample_ids]
        return torch.from_numpy(np.stack(masks)[:, None].astype(np.float32)).to(device)

    def _mask(self, sample_id: str, shape: tuple[int, int], epoch: int) -> np.ndarray:
        if not self.active(epoch) or sample_id not in self.masks:
            return np.ones(shape, bool)
        if self.shapes[sample_id] != tuple(shape):
            raise ValueError(f"the MaskTune mask of sample {sample_id!r} is {self.shapes[sample_id]}, the sample "
                             f"{tuple(shape)}; the dataset changed since the masks were made")
        mask = np.unpackbits(self.masks[sample_id], count=shape[0] * shape[1]).astype(bool).reshape(shape)
        if self.mode == "self":
            return mask
        key = zlib.crc32(sample_id.encode())
        rng = np.random.default_rng([self.seed, epoch, key])
        random_mask = np.zeros(mask.size, bool)
        random_mask[rng.permutation(mask.size)[: int(mask.sum())]] = True
        return random_mask.reshape(shape)

    def record(self, sample_ids: Sequence[str], loss_map: Tensor) -> None:
        """Make the Self-MaskTune masks of a batch from its per-pixel task loss (B, H, W) for the next epoch."""
        if not self.records:
            return
        masks = self_masks(loss_map.detach().float(), self.rho).cpu().numpy()
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
        """Mean fraction of kept pixels over the stored masks (NaN if there are none)."""
        if not self.masks:
            return float("nan")
        kept = sum(int(np.unpackbits(value, count=int(np.prod(self.shapes[key]))).sum())
                   for key, value in self.masks.items())
        return kept / sum(int(np.prod(shape)) for key, shape in self.shapes.items() if key in self.masks)

    def state_dict(self) -> dict[str, object]:
        """Checkpoint content: the masks as uint8 tensors and their shapes."""
        return {"masks": {key: torch.from_numpy(value.copy()) for key, value in self.masks.items()},
                "shapes": {key: list(self.shapes[key]) for key in self.masks}}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore the masks of `state_dict`."""
        self.masks = {key: value.numpy().astype(np.uint8) for key, value in state["masks"].items()}
        self.shapes = {key: tuple(int(size) for size in shape) for key, shape in state["shapes"].items()}
        self._pending = {}
