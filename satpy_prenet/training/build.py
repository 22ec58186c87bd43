# SPDX-License-Identifier: GPL-3.0-or-later
"""Building the training datasets (Swath-MPR and Full-IPR stores) from AGRI, GMI, DPR, CLDAS and DEM files.

The layout written is the one of docs/training-data.md (via :mod:`satpy_prenet.data.stores`); the collocation
methods are those of :mod:`satpy_prenet.data.collocation`. The build works in source units, each committed on its
own: one unit per DPR granule (its swath tiles) and one per AGRI file (its disc tiles). After each unit the tile
count of every store is written to ``<root>/progress.json`` (atomically); a rerun first cuts every store back to the
last recorded counts (undoing a half-written unit) and skips the finished units, so that an interrupted build resumes
to exactly the stores an uninterrupted one writes.

Skip or abort (see docs/training-data.md, "Builder behaviour"): a file that cannot be read as its product, or that
is of the wrong satellite, aborts the build with a :class:`BuildError` (or the reader's
:class:`~satpy_prenet.data.errors.SourceFileError`) naming it, because a bad archive should be repaired, not silently
thinned. Missing partners and empty data skip the unit or tile with a logged WARNING and a count in the
:class:`BuildReport`: a DPR granule without its GMI granule, a granule that meets no AGRI file in time and space, an
hour without a CLDAS file, NaN-only AGRI or GPM data. A build that has DPR granules but no DEM aborts before it starts.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import netCDF4
import numpy as np
import rasterio
import xarray as xr
from tqdm import tqdm

from satpy_prenet.agri_files import AGRIFileError, inspect_agri_file, parse_agri_name
from satpy_prenet.channels import PAPER_BANDS, bands
from satpy_prenet.data import collocation as col
from satpy_prenet.data import stores
from satpy_prenet.data.cldas import CLDASFileError, parse_cldas_name, read_cldas_precipitation
from satpy_prenet.data.elevation import read_elevation
from satpy_prenet.data.errors import SourceFileError
from satpy_prenet.data.gpm import parse_gpm_filename, read_dpr_2a, read_gmi_1c
from satpy_prenet.synthetic.atomic import atomic_path

LOG = logging.getLogger(__name__)

#: Rain / no-rain threshold of the labels (mm/h, inclusive), as in the paper.
RAIN_THRESHOLD = 0.1
#: Name of the commit record under the dataset root.
PROGRESS_FILE = "progress.json"
#: GMI scans used for a swath tile: those within this time of the tile's DPR scans (GMI leads DPR by about 67 s).
GMI_TIME_MARGIN = dt.timedelta(minutes=5)

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
        max_time_difference_minutes: Largest difference between a DPR scan and the nominal start of its AGRI scan.
        validation_from: ISO time from which sources go to the validation split (None: from the fractions).
        test_from: ISO time from which sources go to the test split (None: from the fractions).
        validation_fraction: Used when ``validation_from`` is None: share of the sources' time span for validation.
        test_fraction: Used when ``test_from`` is None: last share of the time span, for testing.
    """

    swath_tile_scans: int = 256
    disc_tile_size: int = 256
    disc_tile_stride: int | None = None
    max_disc_tiles_per_file: int | None = None
    bands: tuple[str, ...] = PAPER_BANDS
    min_rain_fraction: float = 0.05
    min_label_coverage: float = 0.5
    min_disc_coverage: float = 0.9
    max_time_difference_minutes: float = 10.0
    validation_from: str | None = None
    test_from: str | None = None
    validation_fraction: float = 0.1
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "bands", tuple(self.bands))
        bands(self.bands)  # raises for unknown keys
        if self.swath_tile_scans < 1 or self.disc_tile_size < 1 or (self.disc_tile_stride or 1) < 1:
            raise ValueError("tile sizes and stride must be positive")
        for key in ("min_rain_fraction", "min_label_coverage", "min_disc_coverage", "validation_fraction",
                    "test_fraction"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"{key} must lie in [0, 1], not {getattr(self, key)}")
        if self.validation_fraction + self.test_fraction > 1.0:
            raise ValueError("validation_fraction + test_fraction must not exceed 1")
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
        units_done: Source units this run finished.
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
        self.skipped[reason] = self.skipped.get(reason, 0) + count


def discover_sources(folder: str | Path) -> Sources:
    """Find the input files under ``folder`` (recursively) by their real names.

    AGRI L1 4 km files (``FY4?-_AGRI--_N_..._4000M_V....HDF``), GMI 1C (``1C.GPM.GMI.*.HDF5``), DPR 2A
    (``2A.GPM.DPR.*.HDF5``), CLDAS hourly precipitation (``Z_NAFP_C_BABJ_*HOR-PRE*.nc``) and one DEM GeoTIFF
    (``*.tif`` that is not a CLDAS file). Hidden files (e.g. partial writes) are ignored.

    Raises:
        BuildError: If the folder does not exist or holds more than one DEM.
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
    return Sources(agri=found(_AGRI_GLOB), gmi=found(_GMI_GLOB), dpr=found(_DPR_GLOB), cldas=found(_CLDAS_GLOB),
                   elevation=dems[0] if dems else None)


def build_datasets(sources: Sources, root: str | Path, config: BuildConfig | None = None, *,
                   progress: bool = True) -> BuildReport:
    """Build (or resume building) the Swath-MPR and Full-IPR stores under ``root``.

    Args:
        sources: The input files (:func:`discover_sources`).
        root: Dataset root; stores go to ``<root>/<kind>/<split>.zarr``.
        config: Build settings (default :class:`BuildConfig`).
        progress: Show a tqdm progress bar over the source units.

    Returns:
        What the build did.

    Raises:
        BuildError: For unusable inputs (see the module notes) and for a root that was started with other
            settings or other split boundaries.
        SourceFileError: A reader's error for a malformed GPM or CLDAS file.
    """
    started = time.monotonic()
    builder = _Builder(sources, Path(root), config or BuildConfig())
    units = builder.units()
    for unit_id, run in tqdm(units, desc="building training tiles", unit="source", disable=not progress):
        builder.run_unit(unit_id, run)
    builder.report.tiles = builder.counts()
    builder.report.seconds = time.monotonic() - started
    LOG.info("Build finished: %s tiles, %s skipped", builder.report.tiles, builder.report.skipped)
    return builder.report


class _Builder:
    """State of one build: indexes of the sources, caches, the commit record and the report."""

    def __init__(self, sources: Sources, root: Path, config: BuildConfig):
        self.sources, self.root, self.config = sources, root, config
        self.report = BuildReport()
        self.agri_names = {path: _agri_name(path) for path in sources.agri}
        self.gmi_by_granule = _granule_index(sources.gmi)
        self.labels = _cldas_index(sources.cldas)
        self.boundaries = _split_boundaries(config, sources, self.agri_names)
        self.dem = _load_dem(sources)
        self.attrs = self._store_attrs()
        self.progress = self._start_progress()
        self._agri_cache: collections.OrderedDict[Path, tuple[xr.DataArray, np.ndarray | None]] = \
            collections.OrderedDict()
        self._label_cache: collections.OrderedDict[dt.datetime, xr.DataArray | None] = collections.OrderedDict()

    # ---------------------------------------------------------------- setup

    def _store_attrs(self) -> dict[str, object]:
        """Attributes common to every store (``split`` and ``pr_no_echo_dbz`` are added per store)."""
        wavelengths = [band.wavelength for band in bands(self.config.bands)]
        attrs = {"ir_wavelengths_um": wavelengths, "build_config": self.config.to_dict(),
                 "split_boundaries": {key: value.isoformat() for key, value in self.boundaries.items()},
                 "rain_threshold_mm_h": RAIN_THRESHOLD}
        simulations = _simulation_texts(self.sources)
        if simulations:
            attrs.update(simulated=True, simulation=simulations)
        return attrs

    def _start_progress(self) -> dict:
        """Load (and check) or start the commit record; cut the stores back to its last committed counts."""
        path = self.root / PROGRESS_FILE
        settings = {"config": self.config.to_dict(), "split_boundaries": self.attrs["split_boundaries"]}
        if path.is_file():
            record = json.loads(path.read_text())
            if {key: record.get(key) for key in settings} != json.loads(json.dumps(settings)):
                raise BuildError(path, "the dataset root was started with other settings or split boundaries; "
                                       "build into a new root (or delete this one)")
        else:
            record = {**settings, "units": {}, "counts": {}}
        for kind in stores.KINDS:
            for split in stores.SPLITS:
                store = stores.store_path(self.root, kind, split)
                committed = record["counts"].get(f"{kind}/{split}", 0)
                if (stores.tile_count(store) or 0) > committed:
                    stores.truncate(store, committed)
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json(path, record)
        return record

    def units(self) -> list[tuple[str, object]]:
        """The source units in build order: DPR granules, then AGRI files (each as (id, callable))."""
        units = [(f"swath:{path.name}", lambda path=path: self.swath_unit(path)) for path in self.sources.dpr]
        units += [(f"disc:{path.name}", lambda path=path: self.disc_unit(path)) for path in self.sources.agri]
        return units

    def counts(self) -> dict[str, int]:
        """Tiles in every existing store."""
        counts = {}
        for kind in stores.KINDS:
            for split in stores.SPLITS:
                count = stores.tile_count(stores.store_path(self.root, kind, split))
                if count is not None:
                    counts[f"{kind}/{split}"] = count
        return counts

    def run_unit(self, unit_id: str, run) -> None:
        """Run one unit unless it is finished already; append its tiles and commit the counts."""
        if unit_id in self.progress["units"]:
            self.report.units_resumed += 1
            return
        tiles_by_split = run() or {}
        for (kind, split), tiles in sorted(tiles_by_split.items()):
            if not tiles:
                continue
            batch = xr.concat(tiles, dim=stores.TILE_DIM)
            attrs = {**self.attrs, "split": split}
            if kind == stores.SWATH_MPR:
                attrs["pr_no_echo_dbz"] = col.PR_NO_ECHO_DBZ
            stores.append_tiles(stores.store_path(self.root, kind, split), batch, kind=kind, attrs=attrs)
            key = f"{kind}/{split}"
            self.report.added[key] = self.report.added.get(key, 0) + len(tiles)
        counts = self.counts()
        self.progress["units"][unit_id] = counts
        self.progress["counts"] = counts
        _write_json(self.root / PROGRESS_FILE, self.progress)
        self.report.units_done += 1

    # ---------------------------------------------------------------- shared inputs

    def split_of(self, when: dt.datetime) -> str:
        """Split of a source time (granule start or AGRI scan start)."""
        if when >= self.boundaries["test_from"]:
            return "test"
        if when >= self.boundaries["validation_from"]:
            return "validation"
        return "train"

    def agri(self, path: Path) -> tuple[xr.DataArray, np.ndarray | None]:
        """An AGRI file's IR (lazy, with its area) and its values (None if all NaN); the last few are cached."""
        if path in self._agri_cache:
            self._agri_cache.move_to_end(path)
            return self._agri_cache[path]
        name = self.agri_names[path]
        try:
            inspect_agri_file(path, self.config.bands)
            ir = col.load_agri_ir(path, self.config.bands, name.platform)
            values = np.asarray(ir.values, dtype=np.float32)
        except AGRIFileError as err:
            raise BuildError(path, str(err).removeprefix(f"{path}: ")) from err
        except (OSError, ValueError, KeyError) as err:
            raise BuildError(path, f"satpy cannot read it as an AGRI L1 file ({err})") from err
        if not np.isfinite(values).any():
            LOG.warning("%s: every IR value is NaN; the file is not used", path)
            self.report.skip("agri_all_nan")
            values = None
        self._agri_cache[path] = (ir, values)
        while len(self._agri_cache) > 2:
            self._agri_cache.popitem(last=False)
        return ir, values

    def label(self, data_time: dt.datetime) -> xr.DataArray | None:
        """The CLDAS field of a data time (None, with a WARNING, if there is no file for it)."""
        if data_time not in self._label_cache:
            path = self.labels.get(data_time)
            if path is None:
                LOG.warning("No CLDAS file for the hour ending %s", data_time)
            self._label_cache[data_time] = None if path is None else read_cldas_precipitation(path)
            while len(self._label_cache) > 3:
                self._label_cache.popitem(last=False)
        return self._label_cache[data_time]

    def tile_filter(self, label: np.ndarray, ir: np.ndarray) -> str | None:
        """Reason to drop a tile (None to keep it): too little IR, too little label, too little rain."""
        pixels = label.size
        if np.all(np.isfinite(ir), axis=0).sum() < self.config.min_disc_coverage * pixels:
            return "ir_coverage"
        labelled = np.isfinite(label)
        if labelled.sum() == 0 or labelled.sum() < self.config.min_label_coverage * pixels:
            return "label_coverage"
        if (label[labelled] >= RAIN_THRESHOLD).mean() < self.config.min_rain_fraction:
            return "little_rain"
        return None

    # ---------------------------------------------------------------- swath units

    def swath_unit(self, dpr_path: Path) -> dict[tuple[str, str], list[xr.Dataset]]:
        """Swath-MPR tiles of one DPR granule (with its GMI granule)."""
        granule = parse_gpm_filename(dpr_path.name).granule
        gmi_path = self.gmi_by_granule.get(granule)
        if gmi_path is None:
            LOG.warning("%s: no GMI 1C file of granule %s; granule skipped", dpr_path, granule)
            self.report.skip("no_gmi")
            return {}
        dpr, gmi = read_dpr_2a(dpr_path), read_gmi_1c(gmi_path)
        _check_pair(dpr_path, dpr, gmi_path, gmi)
        reason = _empty_gpm(dpr, gmi)
        if reason:
            LOG.warning("%s: %s; granule skipped", dpr_path if reason == "gpm_all_nan" else gmi_path,
                        reason.replace("_", " "))
            self.report.skip(reason)
            return {}
        candidates = self.agri_candidates(dpr)
        blocks = col.scan_blocks(self.usable_scans(dpr, candidates), self.config.swath_tile_scans)
        if not blocks:
            LOG.warning("%s: no block of %d scans meets an AGRI file within %s in time and space; granule skipped",
                        dpr_path, self.config.swath_tile_scans, self.config.max_time_difference)
            self.report.skip("no_agri")
            return {}
        tiles = collections.defaultdict(list)
        granule_split = self.split_of(_gpm_start(dpr))
        for start, stop in blocks:
            tile, reason = self.swath_tile(dpr.isel(nscan=slice(start, stop)), gmi, candidates, granule_split)
            if tile is None:
                self.report.skip(reason)
            else:
                tiles[(stores.SWATH_MPR, granule_split)].append(tile)
        return tiles

    def agri_candidates(self, dpr: xr.Dataset) -> list[tuple[Path, dt.datetime, object]]:
        """AGRI files (path, nominal start, area) that may serve a granule: start within its time span +- margin."""
        times = dpr["time"].values[~np.isnat(dpr["time"].values)]
        first = _to_datetime(times.min()) - self.config.max_time_difference
        last = _to_datetime(times.max()) + self.config.max_time_difference
        found = []
        for path, name in sorted(self.agri_names.items()):
            if first <= name.start_time <= last:
                ir, values = self.agri(path)
                if values is not None:
                    found.append((path, name.start_time, ir.attrs["area"]))
        return found

    def usable_scans(self, dpr: xr.Dataset, candidates: list) -> np.ndarray:
        """Scans whose nadir footprint lies in an AGRI file's area within the time limit."""
        times = dpr["time"].values
        nadir = dpr.sizes["nray"] // 2
        lon, lat = dpr["Longitude"].values[:, nadir], dpr["Latitude"].values[:, nadir]
        usable = np.zeros(times.shape, bool)
        limit = np.timedelta64(int(self.config.max_time_difference.total_seconds() * 1000), "ms")
        for _, start, area in candidates:
            near = ~np.isnat(times) & (np.abs(times - np.datetime64(start, "ns")) <= limit)
            usable |= near & col.agri_indices(area, lon, lat)[2]
        return usable

    def swath_tile(self, dpr: xr.Dataset, gmi: xr.Dataset, candidates: list,
                   split: str) -> tuple[xr.Dataset | None, str | None]:
        """One Swath-MPR tile from a block of DPR scans, or None and the reason it is dropped."""
        lon, lat = dpr["Longitude"].values, dpr["Latitude"].values
        index = col.match_agri_file(dpr["time"].values, lon, lat, [(start, area) for _, start, area in candidates],
                                    self.config.max_time_difference)
        if index is None:
            return None, "no_agri_tile"
        agri_path, agri_start, area = candidates[index]
        if self.split_of(agri_start) != split:
            return None, "split_boundary"
        label_time = col.cldas_data_time(agri_start)
        field_ = self.label(label_time)
        if field_ is None:
            return None, "no_label"
        valid = col.footprint_valid(dpr)
        label = np.where(valid, col.label_at(field_, lon, lat), np.float32(np.nan))
        ir = col.agri_at_footprints(self.agri(agri_path)[1], area, lon, lat)
        reason = self.tile_filter(label, ir)
        if reason:
            return None, reason
        pmw = col.gmi_at_footprints(_gmi_near(gmi, dpr["time"].values), lon, lat)
        geo = np.where(valid, col.geo_channels(self.dem, lon, lat), np.float32(np.nan))
        times = dpr["time"].values
        first_scan = _to_datetime(times[~np.isnat(times)].min())
        data = {"ir": (("ir_band", "along", "across"), ir), "pmw": (("pmw_channel", "along", "across"), pmw),
                "pr": (("range_bin", "along", "across"), col.dpr_profiles(dpr)),
                "geo": (("geo_channel", "along", "across"), geo.astype(np.float32)),
                "label": (("along", "across"), label.astype(np.float32))}
        axes = {"ir_band": list(self.config.bands), "pmw_channel": col.gmi_channel_labels(gmi),
                "range_bin": dpr["nbin"].values.astype(np.int16), "geo_channel": list(col.GEO_CHANNELS)}
        per_tile = {"sample_id": f"swath:{dpr.attrs['granule_number']}:{first_scan:%Y%m%dT%H%M%S}",
                    "time": np.datetime64(agri_start, "ns"), "gpm_time": times[times.size // 2],
                    "agri_file": agri_path.name, "gmi_file": Path(gmi.attrs["source_file"]).name,
                    "dpr_file": Path(dpr.attrs["source_file"]).name, "label_file": self._label_name(label_time)}
        return _one_tile(data, axes, per_tile), None

    def _label_name(self, data_time: dt.datetime) -> str:
        return self.labels[data_time].name

    # ---------------------------------------------------------------- disc units

    def disc_unit(self, agri_path: Path) -> dict[tuple[str, str], list[xr.Dataset]]:
        """Full-IPR tiles of one AGRI file."""
        ir, values = self.agri(agri_path)
        if values is None:
            return {}
        name = self.agri_names[agri_path]
        label_time = col.cldas_data_time(name.start_time)
        field_ = self.label(label_time)
        if field_ is None:
            LOG.warning("%s: no CLDAS file for the hour ending %s; file skipped", agri_path, label_time)
            self.report.skip("no_label")
            return {}
        lons, lats = ir.attrs["area"].get_lonlats()
        label = col.label_at(field_, np.where(np.isfinite(lons), lons, np.nan), np.where(np.isfinite(lats), lats,
                                                                                          np.nan))
        kept = []
        for line, column in self.disc_positions(values.shape[1:]):
            window = self.disc_window(line, column)
            reason = self.tile_filter(label[window], values[(slice(None), *window)])
            if reason:
                self.report.skip(reason)
                continue
            kept.append((line, column, float(np.nanmean(label[window] >= RAIN_THRESHOLD))))
        kept = self._limit(kept)
        split = self.split_of(name.start_time)
        tiles = []
        for line, column, _ in kept:
            window = self.disc_window(line, column)
            tiles.append(self.disc_tile(ir, values[(slice(None), *window)], label[window], line, column,
                                        self.labels[label_time].name))
        return {(stores.FULL_IPR, split): tiles}

    def disc_window(self, line: int, column: int) -> tuple[slice, slice]:
        """File-relative slices of the disc tile starting at (line, column)."""
        size = self.config.disc_tile_size
        return slice(line, line + size), slice(column, column + size)

    def disc_positions(self, shape: tuple[int, int]) -> Iterator[tuple[int, int]]:
        """File-relative (line, column) of the disc tiles that fit in an AGRI file."""
        size = self.config.disc_tile_size
        stride = self.config.disc_tile_stride or size
        for line in range(0, shape[0] - size + 1, stride):
            for column in range(0, shape[1] - size + 1, stride):
                yield line, column

    def _limit(self, kept: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
        """At most ``max_disc_tiles_per_file`` tiles, the rainiest, back in raster order."""
        limit = self.config.max_disc_tiles_per_file
        if limit is None or len(kept) <= limit:
            return kept
        self.report.skip("tile_limit", len(kept) - limit)
        rainiest = sorted(kept, key=lambda item: (-item[2], item[0], item[1]))[:limit]
        return sorted(rainiest)

    def disc_tile(self, ir: xr.DataArray, values: np.ndarray, label: np.ndarray, line: int, column: int,
                  label_file: str) -> xr.Dataset:
        """One Full-IPR tile."""
        platform, start = ir.attrs["platform"], ir.attrs["start_time"]
        line, column = ir.attrs["line0"] + line, ir.attrs["column0"] + column
        data = {"ir": (("ir_band", "y", "x"), values.astype(np.float32)),
                "label": (("y", "x"), label.astype(np.float32))}
        per_tile = {"sample_id": f"disc:{platform}:{start:%Y%m%dT%H%M}:{line}:{column}",
                    "time": np.datetime64(start, "ns"), "platform": platform, "line": np.int32(line),
                    "column": np.int32(column), "agri_file": Path(ir.attrs["source_file"]).name,
                    "label_file": label_file}
        return _one_tile(data, {"ir_band": list(self.config.bands)}, per_tile)


# -------------------------------------------------------------------- helpers


def _one_tile(data: dict, axes: dict, per_tile: dict) -> xr.Dataset:
    """A dataset of one tile: variables and per-tile coordinates get a leading ``tile`` dimension of length 1."""
    variables = {name: ((stores.TILE_DIM, *dims), np.asarray(values)[None]) for name, (dims, values) in data.items()}
    coords = {**axes, **{name: (stores.TILE_DIM, np.asarray([value])) for name, value in per_tile.items()}}
    return xr.Dataset(variables, coords=coords)


def _agri_name(path: Path):
    """Parse an AGRI file name, turning a bad name (e.g. an unsupported satellite) into a BuildError."""
    try:
        return parse_agri_name(path)
    except AGRIFileError as err:
        raise BuildError(path, str(err).removeprefix(f"{path}: ")) from err


def _granule_index(paths: list[Path]) -> dict[int, Path]:
    """GMI files by granule number (from the name); two files of one granule are an error."""
    index = {}
    for path in paths:
        try:
            granule = parse_gpm_filename(path.name).granule
        except ValueError as err:
            raise BuildError(path, str(err)) from err
        if granule in index:
            raise BuildError(path, f"a second GMI file of granule {granule} (the first is {index[granule].name})")
        index[granule] = path
    return index


def _cldas_index(paths: list[Path]) -> dict[dt.datetime, Path]:
    """CLDAS files by data time; of several for one hour, NRT is preferred to RT, then the latest production."""
    chosen: dict[dt.datetime, tuple[tuple, Path]] = {}
    for path in paths:
        name = parse_cldas_name(path)
        rank = (name.product == "NRT", name.production_time)
        if name.data_time not in chosen or rank > chosen[name.data_time][0]:
            chosen[name.data_time] = (rank, path)
    return {data_time: path for data_time, (_, path) in chosen.items()}


def _split_boundaries(config: BuildConfig, sources: Sources, agri_names: dict) -> dict[str, dt.datetime]:
    """Start times of the validation and test splits: given, or at fractions of the sources' time span."""
    times = [name.start_time for name in agri_names.values()]
    times += [parse_gpm_filename(path.name).start for path in sources.dpr]
    first, last = (min(times), max(times)) if times else (dt.datetime(2000, 1, 1), dt.datetime(2000, 1, 1))
    span = last - first
    validation = first + span * (1.0 - config.validation_fraction - config.test_fraction)
    test = first + span * (1.0 - config.test_fraction)
    if config.validation_fraction > 0 or config.test_fraction > 0:
        validation, test = (_after(value, first) for value in (validation, test))
    if config.validation_from is not None:
        validation = dt.datetime.fromisoformat(config.validation_from)
    if config.test_from is not None:
        test = dt.datetime.fromisoformat(config.test_from)
    if test < validation:
        raise BuildError("<config>", f"test_from {test} lies before validation_from {validation}")
    return {"validation_from": validation.replace(microsecond=0), "test_from": test.replace(microsecond=0)}


def _after(value: dt.datetime, first: dt.datetime) -> dt.datetime:
    """Push a fraction boundary past the first source time, so the earliest source always trains."""
    return max(value, first + dt.timedelta(seconds=1))


def _load_dem(sources: Sources) -> xr.DataArray | None:
    """The DEM, required when there are DPR granules."""
    if sources.elevation is None:
        if sources.dpr:
            raise BuildError(sources.dpr[0].parent, "no elevation GeoTIFF among the sources; the Swath-MPR geo "
                                                    "channels need one")
        return None
    return read_elevation(sources.elevation)


def _simulation_texts(sources: Sources) -> list[str]:
    """The ``Simulation`` attributes of the input files that carry one (simulated data), deduplicated."""
    texts = set()
    for path in [*sources.agri, *sources.gmi, *sources.dpr]:
        try:
            with h5py.File(path, "r") as h5:
                texts.update(_text(h5.attrs[key]) for key in h5.attrs if key.lower() == "simulation")
        except OSError as err:
            raise BuildError(path, f"not a readable HDF5 file, truncated or corrupt ({err})") from err
    for path in sources.cldas:
        try:
            with netCDF4.Dataset(path) as nc:
                texts.update(str(nc.getncattr(key)) for key in nc.ncattrs() if key.lower() == "simulation")
        except OSError as err:
            raise CLDASFileError(path, f"cannot be read as NetCDF, truncated or corrupt ({err})") from err
    if sources.elevation is not None:
        try:
            with rasterio.open(sources.elevation) as src:
                texts.update(value for key, value in src.tags().items() if key.lower() == "simulation")
        except rasterio.errors.RasterioIOError:
            pass  # read_elevation reports the problem
    return sorted(texts)


def _text(value) -> str:
    """An HDF5 attribute as text."""
    value = np.squeeze(value)
    if isinstance(value, np.ndarray):
        value = value.item()
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _check_pair(dpr_path: Path, dpr: xr.Dataset, gmi_path: Path, gmi: xr.Dataset) -> None:
    """A DPR and a GMI file must come from GPM and be the same granule."""
    for path, data in ((dpr_path, dpr), (gmi_path, gmi)):
        if data.attrs["platform"] != "GPM":
            raise BuildError(path, f"comes from the satellite {data.attrs['platform']!r}, expected GPM")
    if dpr.attrs["granule_number"] != gmi.attrs["granule_number"]:
        raise BuildError(gmi_path, f"is granule {gmi.attrs['granule_number']} inside but paired by name with "
                                   f"{dpr_path.name} (granule {dpr.attrs['granule_number']})")


def _empty_gpm(dpr: xr.Dataset, gmi: xr.Dataset) -> str | None:
    """``gpm_all_nan`` if no DPR footprint is valid, ``gmi_all_nan`` if every GMI Tc is NaN, else None."""
    if not col.footprint_valid(dpr).any():
        return "gpm_all_nan"
    if not (np.isfinite(gmi["S1_Tc"].values).any() or np.isfinite(gmi["S2_Tc"].values).any()):
        return "gmi_all_nan"
    return None


def _gmi_near(gmi: xr.Dataset, times: np.ndarray) -> xr.Dataset:
    """The GMI scans within :data:`GMI_TIME_MARGIN` of the DPR scan times (both swaths cut)."""
    valid = times[~np.isnat(times)]
    margin = np.timedelta64(int(GMI_TIME_MARGIN.total_seconds()), "s")
    low, high = valid.min() - margin, valid.max() + margin
    cut = {}
    for swath in ("S1", "S2"):
        scan_time = gmi[f"{swath}_time"]
        cut[scan_time.dims[0]] = np.flatnonzero((scan_time.values >= low) & (scan_time.values <= high))
    return gmi.isel(cut)


def _gpm_start(dpr: xr.Dataset) -> dt.datetime:
    """Start of a GPM granule (FileHeader StartGranuleDateTime)."""
    return dt.datetime.fromisoformat(dpr.attrs["start_time"])


def _to_datetime(value: np.datetime64) -> dt.datetime:
    """A datetime64 as a naive datetime (UTC)."""
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(value.astype("datetime64[us]").astype(np.int64)))


def _write_json(path: Path, record: dict) -> None:
    """Write JSON atomically (a reader sees the old or the new file, never a partial one)."""
    with atomic_path(path) as partial:
        partial.write_text(json.dumps(record, indent=1, sort_keys=True))
