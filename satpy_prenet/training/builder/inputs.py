# SPDX-License-Identifier: GPL-3.0-or-later
"""The inputs shared by the build's units: AGRI files, CLDAS labels, the DEM, the splits and the tile filter.

AGRI files are opened lazily (satpy, nothing computed): a swath tile reads only the bounding box of its footprints'
pixels, and the disc unit of a file computes its bands once. The last few lazy files, the last computed file and
the last few label fields are cached; the build runs its units in time order, so the caches serve neighbours. Every
read, from a cache or not, notes the input's simulation text, so what a unit notes does not depend on the units run
before it.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr

from satpy_prenet.agri_files import AGRIFileError, inspect_agri_file
from satpy_prenet.data import collocation as col
from satpy_prenet.data.cldas import CLDASFileError, read_cldas_precipitation
from satpy_prenet.data.elevation import elevation_info, read_elevation
from satpy_prenet.evaluation.metrics import RAIN_THRESHOLD
from satpy_prenet.training.builder.config import BuildConfig, BuildError, BuildReport, Sources
from satpy_prenet.training.builder.indexes import agri_name, cldas_index, gpm_start, split_boundaries

LOG = logging.getLogger(__name__)

_LAZY_FILES, _COMPUTED_FILES, _LABELS = 6, 1, 3


class Inputs:
    """Access to the sources of one build, with caches, the split boundaries and the tile filter."""

    def __init__(self, sources: Sources, config: BuildConfig, report: BuildReport, simulation: set[str]):
        self.sources, self.config, self.report, self.simulation = sources, config, report, simulation
        self.agri_names = {path: agri_name(path) for path in sources.agri}
        self.labels = cldas_index(sources.cldas)
        times = [name.start_time for name in self.agri_names.values()] + [gpm_start(path) for path in sources.dpr]
        self.boundaries = split_boundaries(config, times)
        self._lazy: collections.OrderedDict[Path, xr.DataArray] = collections.OrderedDict()
        self._computed: collections.OrderedDict[Path, np.ndarray | None] = collections.OrderedDict()
        self._label_cache: collections.OrderedDict[dt.datetime, xr.DataArray | None] = collections.OrderedDict()
        self._cldas_notes: dict[Path, set[str]] = {}
        self._all_nan: set[Path] = set()
        if sources.elevation is None:
            if sources.dpr:
                raise BuildError(sources.dpr[0].parent, "no elevation GeoTIFF among the sources; the Swath-MPR geo "
                                                        "channels need one")
        else:
            self._note(elevation_info(sources.elevation))

    def _note(self, attrs: dict) -> None:
        """Remember the simulation text of an input's attributes, if any."""
        if "simulation" in attrs:
            self.simulation.add(str(attrs["simulation"]))

    # ---------------------------------------------------------------- splits

    def split_of(self, when: dt.datetime) -> str:
        """Split of a source time (granule start or AGRI nominal start)."""
        if when >= self.boundaries["test_from"]:
            return "test"
        if when >= self.boundaries["validation_from"]:
            return "validation"
        return "train"

    def in_gap(self, when: dt.datetime) -> bool:
        """Whether a source time lies within ``split_gap_minutes`` before a split boundary."""
        gap = dt.timedelta(minutes=self.config.split_gap_minutes)
        return any(boundary - gap <= when < boundary for boundary in self.boundaries.values())

    # ---------------------------------------------------------------- AGRI

    def agri(self, path: Path) -> xr.DataArray:
        """An AGRI file's IR bands, lazy (nothing computed), with its area in ``attrs``."""
        if path in self._lazy:
            self._lazy.move_to_end(path)
            self._note(self._lazy[path].attrs)
            return self._lazy[path]
        try:
            inspect_agri_file(path, self.config.bands, check_data=False)  # files without data are skipped below
            ir = col.load_agri_ir(path, self.config.bands, self.agri_names[path].platform)
        except AGRIFileError as err:
            raise BuildError(path, str(err).removeprefix(f"{path}: ")) from err
        except (OSError, ValueError, KeyError) as err:
            raise BuildError(path, f"satpy cannot read it as an AGRI L1 file ({err})") from err
        self._note(ir.attrs)
        self._lazy[path] = ir
        while len(self._lazy) > _LAZY_FILES:
            self._lazy.popitem(last=False)
        return ir

    def agri_values(self, path: Path) -> np.ndarray | None:
        """All IR values of an AGRI file, computed (None, counted once as ``agri_all_nan``, if all NaN)."""
        if path not in self._computed:
            try:
                values = np.asarray(self.agri(path).values, dtype=np.float32)
            except (OSError, ValueError, KeyError) as err:
                raise BuildError(path, f"satpy cannot read its IR bands ({err})") from err
            if not np.isfinite(values).any():
                values = None
                if path not in self._all_nan:
                    LOG.warning("%s: every IR value is NaN; the file gives no disc tiles", path)
                    self.report.skip("agri_all_nan")
                    self._all_nan.add(path)
            self._computed[path] = values
            while len(self._computed) > _COMPUTED_FILES:
                self._computed.popitem(last=False)
        return self._computed[path]

    def agri_pixels(self, path: Path) -> xr.DataArray | np.ndarray:
        """The IR of an AGRI file to sample: its computed values if cached, else the lazy array."""
        computed = self._computed.get(path)
        return computed if computed is not None else self.agri(path)

    # ---------------------------------------------------------------- labels and DEM

    def label(self, data_time: dt.datetime) -> xr.DataArray | None:
        """The CLDAS field of a data time (None, with a WARNING, if there is no file for it)."""
        if data_time not in self._label_cache:
            path = self.labels.get(data_time)
            if path is None:
                LOG.warning("No CLDAS file for the hour ending %s", data_time)
                field = None
            else:
                field = read_cldas_precipitation(path)
            self._label_cache[data_time] = field
            while len(self._label_cache) > _LABELS:
                self._label_cache.popitem(last=False)
        if data_time in self.labels:
            self._note_cldas(self.labels[data_time])
        return self._label_cache[data_time]

    def _note_cldas(self, path: Path) -> None:
        """Remember a CLDAS file's global ``simulation`` attribute (the CLDAS reader does not return it)."""
        if path not in self._cldas_notes:
            try:
                with netCDF4.Dataset(path) as nc:
                    self._cldas_notes[path] = {str(nc.getncattr(key)) for key in nc.ncattrs()
                                               if key.lower() == "simulation"}
            except OSError as err:
                raise CLDASFileError(path, f"cannot be read as NetCDF, truncated or corrupt ({err})") from err
        self.simulation.update(self._cldas_notes[path])

    def label_name(self, data_time: dt.datetime) -> str:
        """File name of the CLDAS field of a data time."""
        return self.labels[data_time].name

    def dem_window(self, lon: np.ndarray, lat: np.ndarray) -> xr.DataArray:
        """The DEM around points (a windowed read of the GeoTIFF, not the whole file)."""
        finite = np.isfinite(lon) & np.isfinite(lat)
        if not finite.any():
            return read_elevation(self.sources.elevation, (0.0, 0.0, 0.0, 0.0))
        wrapped = np.mod(np.asarray(lon, np.float64)[finite] + 180.0, 360.0) - 180.0
        if wrapped.max() - wrapped.min() > 180.0:  # across the antimeridian: use the 0-360 frame
            wrapped = np.mod(wrapped, 360.0)
        bounds = (float(wrapped.min()), float(np.min(lat[finite])), float(wrapped.max()), float(np.max(lat[finite])))
        return read_elevation(self.sources.elevation, bounds)

    # ---------------------------------------------------------------- tile filter

    def tile_filter(self, label: np.ndarray, ir: np.ndarray) -> str | None:
        """Reason to drop a tile (None to keep it): too little IR, too little label, too little rain."""
        pixels = label.size
        if np.all(np.isfinite(ir), axis=0).sum() < self.config.min_disc_coverage * pixels:
            return "ir_coverage"
        labelled = np.isfinite(label).sum()
        if labelled == 0 or labelled < self.config.min_label_coverage * pixels:
            return "label_coverage"
        if rain_fraction(label) < self.config.min_rain_fraction:
            return "little_rain"
        return None


def rain_fraction(label: np.ndarray) -> float:
    """Fraction of the labelled pixels with rain (>= :data:`RAIN_THRESHOLD`); 0 without labelled pixels."""
    labelled = label[np.isfinite(label)]
    return float((labelled >= RAIN_THRESHOLD).mean()) if labelled.size else 0.0
