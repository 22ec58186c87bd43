# Copyright (c) 2026 satpy-prenet developers
#
# This program is free software: you can redistribute it and/or modify it under the terms of the GNU General Public
# License as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later
# version. See the LICENSE file.
"""The torch device PRE-Net runs on: choosing it, naming it, its mixed precision and its process-wide thread."""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

LOG = logging.getLogger(__name__)

_THREADS: dict[str, ThreadPoolExecutor] = {}
_THREADS_GUARD = threading.Lock()
_ANNOUNCED: set[str] = set()


#: Precisions of inference: ``auto`` (mixed on CUDA; on the CPU bfloat16 where it has bfloat16 instructions, else
#: float32), ``float32``, ``bfloat16`` (autocast).
PRECISIONS = ("auto", "float32", "bfloat16")


def select_device(requested: str | torch.device | None = "auto") -> torch.device:
    """Choose the torch device to run on, and log the choice.

    Args:
        requested: ``auto`` (or None: the first GPU if CUDA is available, else the CPU), ``cpu``, ``cuda``,
            ``cuda:N``, another torch device string, or a `torch.device`.

    Returns:
        The device. When CUDA is requested but not available, the CPU, with a logged warning.

    Raises:
        ValueError: If the string names no torch device, or ``cuda:N`` names a GPU that does not exist.
    """
    device = parse_device(requested)
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        _announce(f"{describe(device)} (device 'auto')")
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            LOG.warning("CUDA device %r requested but CUDA is not available; running PRE-Net on the CPU",
                        str(requested))
            return torch.device("cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"CUDA device {device} requested but only {torch.cuda.device_count()} GPU(s) exist")
    _announce(describe(device))
    return device


def _announce(choice: str) -> None:
    """Log the device choice at INFO the first time in the process, at DEBUG afterwards (each product asks)."""
    LOG.log(logging.DEBUG if choice in _ANNOUNCED else logging.INFO, "Running PRE-Net on %s", choice)
    _ANNOUNCED.add(choice)


def parse_device(requested: str | torch.device | None) -> torch.device | None:
    """The torch device a setting names, or None for ``auto`` (or None); nothing is checked against the hardware.

    Raises:
        ValueError: If the string names no torch device.
    """
    if requested is None or (isinstance(requested, str) and requested.strip().lower() == "auto"):
        return None
    try:
        return torch.device(requested.strip().lower() if isinstance(requested, str) else requested)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"Unknown torch device {requested!r}; use auto, cpu, cuda or cuda:N") from error


def describe(device: torch.device) -> str:
    """The device's name for logs: ``cpu``, or ``cuda:N (GPU model)``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"{device} ({torch.cuda.get_device_name(index)})"
    return str(device)


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast type of inference on ``device`` at ``precision`` (one of `PRECISIONS`); None: float32.

    ``auto`` is bfloat16 (else float16) on CUDA; on the CPU, bfloat16 where `cpu_has_bfloat16`, else float32
    (without those instructions torch emulates bfloat16, 32 times slower; with them a full disc ran 1.5 times faster
    than float32 with the ``small`` preset and 3.5 times with ``paper``, at a CSI cost of 0.0003: docs/benchmarks.md).
    ``bfloat16`` autocasts on either.

    Raises:
        ValueError: For a precision not in `PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if precision == "float32":
        return None
    if device.type != "cuda":
        return torch.bfloat16 if precision == "bfloat16" or cpu_has_bfloat16() else None
    return torch.bfloat16 if precision == "bfloat16" or torch.cuda.is_bf16_supported() else torch.float16


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 dot products in hardware (AVX512-BF16; every CPU with AMX has it).

    Asked of torch's own CPU feature probe (the one its compiler uses), which is private API: a torch without it
    reads as False, and ``auto`` stays float32.
    """
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(probe and probe())


def precision_name(device: torch.device, precision: str = "auto") -> str:
    """The arithmetic ``precision`` runs in on ``device``: ``float32``, ``bfloat16`` or ``float16`` (autocast)."""
    dtype = autocast_dtype(device, precision)
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def device_thread(device: torch.device) -> ThreadPoolExecutor:
    """The process-wide thread that runs every model load and forward pass on one device (each GPU, or the CPU).

    One thread serialises the device's work, whatever the number of dask threads or runners: GPU memory stays
    bounded, and dask threads do not multiply torch's own. On the CPU it also keeps torch's OpenMP team fast: GNU
    OpenMP (the runtime of torch's CPU wheels) gives every thread that starts parallel work a team of its own, and
    once the teams' threads outnumber the cores it stops spinning between parallel regions. On 2 cores, a forward
    in a second thread was 1.5 times slower than in the first (docs/benchmarks.md, "One thread per device").
    """
    name = _thread_name(device)
    with _THREADS_GUARD:
        if name not in _THREADS:
            _THREADS[name] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        return _THREADS[name]


def on_device_thread(device: torch.device, function, *args, **kwargs):
    """``function(*args, **kwargs)`` run on `device_thread` (directly when called from it); its result or error."""
    if threading.current_thread().name.startswith(_thread_name(device) + "_"):
        return function(*args, **kwargs)
    return device_thread(device).submit(function, *args, **kwargs).result()


def _thread_name(device: torch.device) -> str:
    index = torch.cuda.current_device() if device.type == "cuda" and device.index is None else device.index
    return f"prenet-{device.type}" + ("" if index is None else f":{index}")


def _forget_threads_in_child() -> None:
    """A forked child has none of its parent's threads: it starts its own on first use."""
    global _THREADS_GUARD
    _THREADS.clear()
    _THREADS_GUARD = threading.Lock()


os.register_at_fork(after_in_child=_forget_threads_in_child)
