# SPDX-License-Identifier: GPL-3.0-or-later
"""Training checkpoints: one torch file per stage and head, written atomically, read without arbitrary unpickling.

A checkpoint holds the weights, the optimizer, scheduler and gradient-scaler states, the number of completed
epochs, the random-number generator states, the MaskTune masks, the best validation score so far, the input
normalisation and the configuration, so that ``--resume`` continues exactly where the run stopped. Checkpoints are
written by this code and loaded with ``torch.load(weights_only=True)``, which refuses anything but tensors and plain
containers.
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: Value of a checkpoint's ``format`` entry.
FORMAT = "satpy-prenet-checkpoint"
FORMAT_VERSION = 1
_REQUIRED = ("format", "format_version", "stage", "head", "epoch", "model")


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, tampered with, or of another stage or head."""


def stage_dir(workdir: str | os.PathLike, stage: str, head: str) -> Path:
    """Folder of a stage's checkpoints and metrics log: ``<workdir>/checkpoints/<stage>-<head>``."""
    return Path(workdir) / "checkpoints" / f"{stage}-{head}"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (with the format marker) to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **state}, tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, *, stage: str | None = None, head: str | None = None,
                    mmap: bool = False) -> dict[str, Any]:
    """Read a checkpoint on the CPU, checking its format and, if given, its stage and head.

    Args:
        path: The checkpoint file.
        stage: Expected stage, or None.
        head: Expected head, or None.
        mmap: Map the tensors from the file instead of reading them (cheap when only the plain entries are needed).

    Raises:
        CheckpointError: Naming the file: missing, not a checkpoint, unsafe or corrupt content, or another stage/head.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found (run the stage that writes it first)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable satpy-prenet checkpoint (corrupt, truncated or tampered "
                              f"with: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
                              ) from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a satpy-prenet checkpoint")
    missing = [key for key in _REQUIRED if key not in state]
    if missing or state["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{path}: malformed checkpoint (missing {missing}, "
                              f"version {state.get('format_version')})")
    for key, expected in (("stage", stage), ("head", head)):
        if expected is not None and state[key] != expected:
            raise CheckpointError(f"{path}: checkpoint of {key} {state[key]!r}, expected {expected!r}")
    return state


def rng_state() -> dict[str, Any]:
    """States of the torch (CPU and CUDA), numpy and Python generators, as tensors and plain values."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
             "python": _python_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generator states of `rng_state`."""
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"],
                         numpy["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state() -> tuple[int, list[int], float | None]:
    version, internal, gauss = random.getstate()
    return version, list(internal), gauss
