# SPDX-License-Identifier: GPL-3.0-or-later
"""The error of the source readers: a file that cannot be read as the expected product."""

from __future__ import annotations

from pathlib import Path


class SourceFileError(ValueError):
    """A source file that cannot be read as the expected product; the message names the file and the problem.

    Attributes:
        path: The file.
        problem: What is wrong with it.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")
