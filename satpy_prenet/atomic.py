# SPDX-License-Identifier: GPL-3.0-or-later
"""Writing files atomically: under a hidden temporary name, renamed into place only when complete."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final`` to write to; rename it to ``final`` on success, delete it on failure."""
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.parent / f".{final.name}.{uuid.uuid4().hex}.part"
    try:
        yield partial
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
