# SPDX-License-Identifier: GPL-3.0-or-later
"""Swath-MPR units: the tiles of one DPR granule (with its GMI granule, AGRI files, CLDAS hours and the DEM)."""

from __future__ import annotations

import collections
import datetime as dt
import logging
from pathlib import Path

import numpy as np
import xarray as xr

from satpy_prenet.data import collocation as col
from satpy_prenet.data import stores
from satpy_prenet.data.gpm import read_dpr_2a, read_gmi_1c
from satpy_prenet.training.builder.config import BuildError
from satpy_prenet.training.builder.indexes import to_datetime
from satpy_prenet.training.builder.inputs import Inputs
from satpy_prenet.training.builder.tiles import Unit, one_tile

LOG = logging.getLogger(__name__)

#: GMI scans used for a swath tile: those within this time of the tile's DPR scans (GMI leads DPR by about 67 s).
GMI_TIME_MARGIN = dt.timedelta(minutes=5)


def swath_unit(inputs: Inputs, dpr_path: Path, gmi_path: Path | None) -> Unit:
    """Swath-MPR tiles of one DPR granule (with its GMI granule, None if there is none)."""
    report, config = inputs.report, inputs.config
    if gmi_path is None:
        LOG.warning("%s: no GMI 1C file of its granule; granule skipped", dpr_path)
        return Unit.skipped(report, "no_gmi")
    dpr, gmi = read_dpr_2a(dpr_path), read_gmi_1c(gmi_path)
    _check_pair(dpr_path, dpr, gmi_path, gmi)
    inputs.simulation.update(str(data.attrs["simulation"]) for data in (dpr, gmi) if "simulation" in data.attrs)
    reason = _empty_gpm(dpr, gmi)
    if reason:
        LOG.warning("%s: %s; granule skipped", dpr_path if reason == "gpm_all_nan" else gmi_path,
                    reason.replace("_", " "))
        report.skip(reason)
        return Unit({})
    candidates = _agri_candidates(inputs, dpr)
    blocks = col.scan_blocks(_usable_scans(inputs, dpr, candidates), config.swath_tile_scans)
    if not blocks:
        LOG.warning("%s: no block of %d scans meets an AGRI file within %s in time and space; granule skipped",
                    dpr_path, config.swath_tile_scans, config.max_time_difference)
        return Unit.skipped(report, "no_agri")
    unit = Unit(collections.defaultdict(list))
    granule_start = dt.datetime.fromisoformat(dpr.attrs["start_time"])
    for start, stop in blocks:
        tile, reason = _swath_tile(inputs, dpr.isel(nscan=slice(start, stop)), gmi, candidates, granule_start)
        if tile is None:
            report.skip(reason)
            unit.missing = unit.missing or ("no_label" if reason == "no_label" else None)
        else:
            unit.tiles[(stores.SWATH_MPR, inputs.split_of(granule_start))].append(tile)
    return unit


def _agri_candidates(inputs: Inputs, dpr: xr.Dataset) -> list[tuple[Path, dt.datetime, object]]:
    """AGRI files (path, nominal start, area) whose start lies within the granule's time span +- the limit."""
    times = dpr["time"].values[~np.isnat(dpr["time"].values)]
    first = to_datetime(times.min()) - inputs.config.max_time_difference
    last = to_datetime(times.max()) + inputs.config.max_time_difference
    return [(path, name.start_time, inputs.agri(path).attrs["area"])
            for path, name in sorted(inputs.agri_names.items(), key=lambda item: (item[1].start_time, item[0]))
            if first <= name.start_time <= last]


def _usable_scans(inputs: Inputs, dpr: xr.Dataset, candidates: list) -> np.ndarray:
    """Scans whose nadir footprint lies in an AGRI file's area (on the disc) within the time limit."""
    times = dpr["time"].values
    nadir = dpr.sizes["nray"] // 2
    lon, lat = dpr["Longitude"].values[:, nadir], dpr["Latitude"].values[:, nadir]
    usable = np.zeros(times.shape, bool)
    limit = np.timedelta64(int(inputs.config.max_time_difference.total_seconds() * 1000), "ms")
    for _, start, area in candidates:
        near = ~np.isnat(times) & (np.abs(times - np.datetime64(start, "ns")) <= limit)
        usable |= near & col.agri_indices(area, lon, lat)[2]
    return usable


def _swath_tile(inputs: Inputs, dpr: xr.Dataset, gmi: xr.Dataset, candidates: list,
                granule_start: dt.datetime) -> tuple[xr.Dataset | None, str | None]:
    """One Swath-MPR tile from a block of DPR scans, or None and the reason it is dropped."""
    config = inputs.config
    lon, lat, times = dpr["Longitude"].values, dpr["Latitude"].values, dpr["time"].values
    index = col.match_agri_file(times, lon, lat, [(start, area) for _, start, area in candidates],
                                config.max_time_difference, config.min_disc_coverage)
    if index is None:
        return None, "no_agri_tile"
    agri_path, agri_start, area = candidates[index]
    if inputs.split_of(agri_start) != inputs.split_of(granule_start):
        return None, "split_boundary"
    if inputs.in_gap(agri_start) or inputs.in_gap(granule_start):
        return None, "split_gap"
    label_time = col.cldas_data_time(agri_start)
    field = inputs.label(label_time)
    if field is None:
        return None, "no_label"
    valid = col.footprint_valid(dpr)
    label = np.where(valid, col.label_at(field, lon, lat), np.float32(np.nan))
    ir = col.agri_at_footprints(inputs.agri_pixels(agri_path), area, lon, lat)
    reason = inputs.tile_filter(label, ir)
    if reason:
        return None, reason
    pmw = col.gmi_at_footprints(_gmi_near(gmi, times), lon, lat)
    pr = col.dpr_profiles(dpr)
    reason = _coverage(inputs, pmw, pr)
    if reason:
        return None, reason
    geo = np.where(valid, col.geo_channels(inputs.dem_window(lon, lat), lon, lat), np.float32(np.nan))
    first_scan = to_datetime(times[~np.isnat(times)].min())
    data = {"ir": (("ir_band", "along", "across"), ir), "pmw": (("pmw_channel", "along", "across"), pmw),
            "pr": (("range_bin", "along", "across"), pr),
            "geo": (("geo_channel", "along", "across"), geo.astype(np.float32)),
            "label": (("along", "across"), label.astype(np.float32))}
    axes = {"ir_band": list(config.bands), "pmw_channel": col.gmi_channel_labels(gmi),
            "range_bin": dpr["nbin"].values.astype(np.int16), "geo_channel": list(col.GEO_CHANNELS)}
    per_tile = {"sample_id": f"swath:{dpr.attrs['granule_number']}:{first_scan:%Y%m%dT%H%M%S}",
                "time": np.datetime64(agri_start, "ns"), "gpm_time": times[times.size // 2],
                "agri_file": agri_path.name, "gmi_file": Path(gmi.attrs["source_file"]).name,
                "dpr_file": Path(dpr.attrs["source_file"]).name, "label_file": inputs.label_name(label_time)}
    return one_tile(data, axes, per_tile), None


def _coverage(inputs: Inputs, pmw: np.ndarray, pr: np.ndarray) -> str | None:
    """``pmw_coverage`` / ``pr_coverage`` when too few footprints have all GMI channels / a PR profile."""
    footprints = pmw[0].size
    if np.isfinite(pmw).all(axis=0).sum() < inputs.config.min_pmw_coverage * footprints:
        return "pmw_coverage"
    if np.isfinite(pr).any(axis=0).sum() < inputs.config.min_pr_coverage * footprints:
        return "pr_coverage"
    return None


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
