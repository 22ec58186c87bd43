# SPDX-License-Identifier: GPL-3.0-or-later
"""Settings, inputs and report of a dataset build, and finding the inputs under a folder."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from satpy_prenet.channels import PAPER_BANDS, bands
from satpy_prenet.data.errors import SourceFileError

_AGRI_GLOB = "FY4*-_AGRI--_N_*_L1-_FDI-_MULT_*_4000M_*.HDF"
_GMI_GLOB = "1C.GPM.GMI.*.HDF5"
_DPR_GLOB = "2A.GPM.DPR.*.HDF5"
_CLDAS_GLOB = "Z_NAFP_C_BABJ_*HOR-PRE*.nc"
_DEM_GLOB = "*.tif"
_CLDAS_TIF = re.compile(r"^Z_NAFP_C_BABJ_")


class BuildError(SourceFileError):
    """A problem that stops the build; the message names the file (or the dataset root) and the problem."""


@dataclass(frozen=True)
class BuildConfig:
    """Settings of a dataset build (stored in every store's attributes and in progress.json).

    Attributes:
        swath_tile_scans: DPR scans per Swath-MPR tile (the tile is this many scans by 49 rays).
        disc_tile_size: Side of the square Full-IPR tiles (AGRI pixels).
        disc_tile_stride: Step between disc tiles; default (None) the tile size: non-overlapping tiles.
        max_disc_tiles_per_file: Keep at most this many disc tiles per AGRI file (the rainiest; None: all).
        bands: AGRI band keys (:mod:`satpy_prenet.channels`), in store order.
        min_rain_fraction: Drop tiles where the fraction of labelled pixels with rain (>= 0.1 mm/h) is below this.
        min_label_coverage: Drop tiles where fewer than this fraction of the pixels have a label.
        min_disc_coverage: Drop tiles where fewer than this fraction of the pixels have every IR band (on the disc).
        min_pmw_coverage: Drop swath tiles where fewer than this fraction of the footprints have all 13 GMI channels.
        min_pr_coverage: Drop swath tiles where fewer than this fraction of the footprints have a PR profile.
        max_time_difference_minutes: Largest difference between a DPR scan and the nominal start of its AGRI scan.
        validation_from: ISO time from which sources go to the validation split (None: from the fractions).
        test_from: ISO time from which sources go to the test split (None: from the fractions).
        validation_fraction: Used when ``validation_from`` is None: share of the sources' time span for validation.
        test_fraction: Used when ``test_from`` is None: last share of the time span, for testing.
        split_gap_minutes: Drop tiles whose source time lies within this many minutes before a split boundary, so
            that no weather system is seen on both sides of it (0: no gap).
    """

    swath_tile_scans: int = 256
    disc_tile_size: int = 256
    disc_tile_stride: int | None = None
    max_disc_tiles_per_file: int | None = None
    bands: tuple[str, ...] = PAPER_BANDS
    min_rain_fraction: float = 0.05
    min_label_coverage: float = 0.5
    min_disc_coverage: float = 0.9
    min_pmw_coverage: float = 0.5
    min_pr_coverage: float = 0.5
    max_time_difference_minutes: float = 10.0
    validation_from: str | None = None
    test_from: str | None = None
    validation_fraction: float = 0.1
    test_fraction: float = 0.2
    split_gap_minutes: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "bands", tuple(self.bands))
        bands(self.bands)  # raises for unknown keys
        if self.swath_tile_scans < 1 or self.disc_tile_size < 1 or (self.disc_tile_stride or 1) < 1:
            raise ValueError("tile sizes and stride must be positive")
        for key in ("min_rain_fraction", "min_label_coverage", "min_disc_coverage", "min_pmw_coverage",
                    "min_pr_coverage", "validation_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"{key} must lie in [0, 1], not {getattr(self, key)}")
        if self.validation_fraction + self.test_fraction > 1.0:
            raise ValueError("validation_fraction + test_fraction must not exceed 1")
        if self.split_gap_minutes < 0:
            raise ValueError(f"split_gap_minutes must not be negative, not {self.split_gap_minutes}")
        for key in ("validation_from", "test_from"):
            if getattr(self, key) is not None:
                dt.datetime.fromisoformat(getattr(self, key))

    @classmethod
    def from_dict(cls, mapping: Mapping[str, object]) -> BuildConfig:
        """Make a config from a mapping (e.g. YAML), rejecting unknown keys.

        Raises:
            ValueError: If a key is unknown or a value is invalid.
        """
        known = {item.name for item in dataclasses.fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise ValueError(f"unknown build setting(s) {unknown}; known are {sorted(known)}")
        return cls(**mapping)

    def to_dict(self) -> dict[str, object]:
        """The settings as JSON-compatible values."""
        values = dataclasses.asdict(self)
        values["bands"] = list(self.bands)
        return values

    @property
    def max_time_difference(self) -> dt.timedelta:
        """:attr:`max_time_difference_minutes` as a timedelta."""
        return dt.timedelta(minutes=self.max_time_difference_minutes)


@dataclass
class Sources:
    """The input files of a build."""

    agri: list[Path] = field(default_factory=list)
    gmi: list[Path] = field(default_factory=list)
    dpr: list[Path] = field(default_factory=list)
    cldas: list[Path] = field(default_factory=list)
    elevation: Path | None = None


@dataclass
class BuildReport:
    """What a build did.

    Attributes:
        tiles: Tiles in each store at the end, keyed ``<kind>/<split>``.
        added: Tiles this run added, same keys.
        skipped: Units or tiles left out, by reason (e.g. ``no_gmi``, ``little_rain``).
        units_done: Source units this run finished (or left to retry, for a missing partner).
        units_resumed: Units finished by an earlier run and skipped.
        seconds: Wall time of this run.
    """

    tiles: dict[str, int] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    units_done: int = 0
    units_resumed: int = 0
    seconds: float = 0.0

    def skip(self, reason: str, count: int = 1) -> None:
        """Count ``count`` units or tiles left out for ``reason``."""
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + count


def discover_sources(folder: str | Path) -> Sources:
    """Find the input files under ``folder`` (recursively) by their real names.

    AGRI L1 4 km files (``FY4?-_AGRI--_N_..._4000M_V....HDF``), GMI 1C (``1C.GPM.GMI.*.HDF5``), DPR 2A
    (``2A.GPM.DPR.*.HDF5``), CLDAS hourly precipitation (``Z_NAFP_C_BABJ_*HOR-PRE*.nc``) and one DEM GeoTIFF
    (``*.tif`` that is not a CLDAS file). Hidden files (e.g. partial writes) are ignored.

    Raises:
        BuildError: If the folder does not exist, holds none of these files, or holds more than one DEM.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BuildError(folder, "no such directory")

    def found(pattern: str) -> list[Path]:
        return sorted(path for path in folder.rglob(pattern) if path.is_file() and not path.name.startswith("."))

    dems = [path for path in found(_DEM_GLOB) if not _CLDAS_TIF.match(path.name)]
    if len(dems) > 1:
        raise BuildError(folder, f"holds {len(dems)} DEM GeoTIFFs ({', '.join(path.name for path in dems)}); "
                                 "keep one")
    sources = Sources(agri=found(_AGRI_GLOB), gmi=found(_GMI_GLOB), dpr=found(_DPR_GLOB), cldas=found(_CLDAS_GLOB),
                      elevation=dems[0] if dems else None)
    if not (sources.agri or sources.gmi or sources.dpr or sources.cldas):
        raise BuildError(folder, "holds no AGRI L1 4 km, GMI 1C, DPR 2A or CLDAS file (searched recursively by the "
                                 "products' real file names); nothing to build")
    return sources
