# Copyright (c) 2026 satpy-prenet developers
#
# This program is free software: you can redistribute it and/or modify it under the terms of the GNU General Public
# License as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later
# version. See the LICENSE file.
"""The torch device PRE-Net runs on: choosing it, naming it, its mixed precision and its process-wide lock."""

from __future__ import annotations

import logging
import threading

import torch

LOG = logging.getLogger(__name__)

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()
_ANNOUNCED: set[str] = set()


#: Precisions of inference: ``auto`` (mixed on CUDA, float32 on the CPU), ``float32``, ``bfloat16`` (autocast).
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

    ``auto`` is bfloat16 (else float16) on CUDA and float32 on the CPU; ``bfloat16`` autocasts on either (on CPUs
    with bfloat16 instructions, several times faster than float32: docs/benchmarks.md).

    Raises:
        ValueError: For a precision not in `PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if precision == "float32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "bfloat16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def device_lock(device: torch.device) -> threading.Lock:
    """The process-wide lock serialising forward passes on one device (each GPU, or the CPU)."""
    name = f"cuda:{torch.cuda.current_device()}" if device.type == "cuda" and device.index is None else str(device)
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(name, threading.Lock())
