# Copyright (c) 2026 satpy-prenet developers
#
# This program is free software: you can redistribute it and/or modify it under the terms of the GNU General Public
# License as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later
# version. See the LICENSE file.
"""Running a model over many equally shaped inputs on one device: batches, mixed precision, locks, GPU memory."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

import numpy as np
import torch

from satpy_prenet.device import autocast_dtype, on_device_thread, select_device

LOG = logging.getLogger(__name__)

#: Inputs per batch when none is given: the GPU takes more at once than the CPU.
DEFAULT_BATCH_SIZE = {"cpu": 4, "cuda": 16}


class DeviceRunner:
    """Feed a model batches of inputs on its device and hand back its outputs as numpy arrays.

    Args:
        model: Takes a float32 batch (B, *input_shape) and returns a tuple of tensors (B, *output_shape) each.
            Put in eval mode and moved to ``device``.
        device: Anything `satpy_prenet.device.select_device` takes.
        batch_size: Inputs per forward pass; default 16 on a GPU, 4 on the CPU. Halved on a GPU out-of-memory
            error.
        precision: ``auto`` (mixed on CUDA; on the CPU bfloat16 where it has bfloat16 instructions, else float32),
            ``float32`` or ``bfloat16`` (`satpy_prenet.device.autocast_dtype`).
        progress: Show a tqdm progress bar (off by default; the satpy path stays quiet).

    Batches run on the device's own thread (`satpy_prenet.device.device_thread`), one at a time per device in the
    whole process, whatever the number of dask threads or runners.
    """

    def __init__(self, model: torch.nn.Module, *, device: str | torch.device = "auto", batch_size: int | None = None,
                 precision: str = "auto", progress: bool = False):
        """Check the batch size and put the model on its device."""
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.device = device if isinstance(device, torch.device) else select_device(device)
        self.batch_size = int(batch_size or DEFAULT_BATCH_SIZE.get(self.device.type, 4))
        self.model = model.to(self.device).eval()
        self.precision = precision
        self.amp_dtype = autocast_dtype(self.device, precision)
        self.progress = progress
        self._state_lock = threading.Lock()

    def __getstate__(self) -> dict:
        """Pickle without the lock (dask.distributed ships the engine to its workers)."""
        return {key: value for key, value in self.__dict__.items() if key != "_state_lock"}

    def __setstate__(self, state: dict) -> None:
        """Unpickle, with a lock of this process."""
        self.__dict__.update(state)
        self._state_lock = threading.Lock()

    def map(self, count: int, fill: Callable[[np.ndarray, int], None], *, input_shape: tuple[int, ...],
            label: str = "PRE-Net") -> Iterator[tuple[range, np.ndarray]]:
        """Run the model on ``count`` inputs in batches.

        Args:
            count: Number of inputs.
            fill: ``fill(buffer, index)`` writes input ``index`` into a float32 buffer of ``input_shape``.
            input_shape: Shape of one input, e.g. (C, T, T).
            label: Name of the progress bar.

        Yields:
            The indices of each batch and the model's outputs for them, float32 (k, outputs, *output_shape).

        Raises:
            RuntimeError: If the GPU runs out of memory with a single input per batch.
        """
        buffer = torch.empty((min(self.batch_size, max(count, 1)), *input_shape), dtype=torch.float32,
                             pin_memory=self.device.type == "cuda")
        array = buffer.numpy()
        bar = self._progress_bar(count, label)
        position = 0
        try:
            while position < count:
                indices = range(position, min(count, position + min(self.batch_size, len(buffer))))
                for slot, index in enumerate(indices):
                    fill(array[slot], index)
                outputs = self._forward_or_shrink(buffer[:len(indices)], input_shape)
                if outputs is None:
                    continue
                position = indices.stop
                if bar is not None:
                    bar.update(len(indices))
                yield indices, outputs
        finally:
            if bar is not None:
                bar.close()

    def _forward_or_shrink(self, batch: torch.Tensor, input_shape: tuple[int, ...]) -> np.ndarray | None:
        """Outputs of one batch, or None after a GPU out-of-memory error halved the batch size."""
        try:
            return on_device_thread(self.device, self._forward, batch)
        except torch.cuda.OutOfMemoryError as error:
            if len(batch) == 1:
                size = " x ".join(str(length) for length in input_shape[1:])
                raise RuntimeError(f"The GPU ran out of memory on {self.device} with a single tile of {size} "
                                   "pixels per batch; free GPU memory, or run on the CPU") from error
        # Outside the except block, so the failed batch's tensors are released before the cache is emptied.
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        with self._state_lock:
            self.batch_size = max(1, min(self.batch_size, len(batch) // 2))
        LOG.warning("GPU out of memory on %s with %d inputs of %s per batch; retrying with %d", self.device,
                    len(batch), tuple(input_shape), self.batch_size)
        return None

    def _forward(self, batch: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            inputs = batch.to(self.device, non_blocking=True)
            autocast = (torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)
                        if self.amp_dtype is not None else contextlib.nullcontext())
            with autocast:
                outputs = self.model(inputs)
            return torch.stack([output.float() for output in outputs], dim=1).cpu().numpy()

    def _progress_bar(self, total: int, label: str):
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, unit="tile", desc=label)
