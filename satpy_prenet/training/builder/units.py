# SPDX-License-Identifier: GPL-3.0-or-later
"""Running one source unit as a task, in this process or on a dask worker.

A task gets the build's sources and settings and a :class:`UnitSpec`, and gives back the unit with what it counted
and the simulation texts of the inputs it read. A process keeps the :class:`~.inputs.Inputs` of the build it last
ran a unit of (its caches serve the neighbouring units a worker gets), keyed by a token unique to each build.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from satpy_prenet.training.builder.config import BuildConfig, BuildReport, Sources
from satpy_prenet.training.builder.disc import disc_unit
from satpy_prenet.training.builder.inputs import Inputs
from satpy_prenet.training.builder.swath import swath_unit
from satpy_prenet.training.builder.tiles import Unit

#: The inputs of the build this process last ran a unit of: (build token, inputs).
_CURRENT: dict[str, Inputs] = {}


@dataclass(frozen=True)
class UnitSpec:
    """A source unit: a DPR granule (``swath``, with its GMI granule or None) or an AGRI file (``disc``)."""

    kind: str
    path: Path
    partner: Path | None = None

    def run(self, inputs: Inputs) -> Unit:
        """Compute the unit's tiles."""
        if self.kind == "swath":
            return swath_unit(inputs, self.path, self.partner)
        return disc_unit(inputs, self.path)


@dataclass
class UnitResult:
    """A unit with what running it counted (skip reasons) and the simulation texts of the inputs it read."""

    unit: Unit
    skipped: dict[str, int]
    simulation: set[str]


def run_unit(token: str, sources: Sources, config: BuildConfig, spec: UnitSpec) -> UnitResult:
    """Run one unit with this process's inputs of the build ``token`` (made on first use)."""
    inputs = _CURRENT.get(token)
    if inputs is None:
        _CURRENT.clear()
        inputs = _CURRENT[token] = Inputs(sources, config, BuildReport(), set())
    inputs.report, inputs.simulation = BuildReport(), set()
    unit = spec.run(inputs)
    return UnitResult(unit, inputs.report.skipped, inputs.simulation)


def forget(token: str) -> None:
    """Drop this process's inputs of the build ``token``."""
    _CURRENT.pop(token, None)
