"""Simulated GPM: orbit geometry, GMI and DPR observation models, V07 file writers, the simulated archive."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from satpy_prenet.data.gpm import parse_gpm_filename, parse_pvl, read_dpr_2a, read_gmi_1c
from satpy_prenet.synthetic import World, footprint, orbit
from satpy_prenet.synthetic import gmi as gmi_model
from satpy_prenet.synthetic.archive import simulate_archive, slot_window
from satpy_prenet.synthetic.dpr import MEASURED_FLOOR_DBZ, NO_ECHO_MEASURED, NOMINAL_ZR, DPRConfig, observe_dpr
from satpy_prenet.synthetic.gmi import GMIConfig, observe_gmi, pct89
from satpy_prenet.synthetic.gpm_file import write_dpr_2a, write_gmi_1c

DATA = Path(__file__).parent / "data" / "gpm"
REAL_GMI = DATA / "1C.GPM.GMI.XCAL2016-C.20140304-S175932-E193159.000079.V07A.HDF5"
REAL_DPR = DATA / "2A.GPM.DPR.V9-20211125.20140308-S220950-E234217.000144.V07A.HDF5"
SEED = 42
#: Seven minutes of a descending pass over southern China and the South China Sea (seed 42): 224 GMI and 600 DPR
#: scans, rain over land and ocean, stratiform and convective.
START, END = dt.datetime(2026, 7, 15, 5, 33), dt.datetime(2026, 7, 15, 5, 40)
SLOTS = (dt.datetime(2026, 7, 15, 5, 30), dt.datetime(2026, 7, 15, 5, 45))


@pytest.fixture(scope="module")
def overpass():
    (found,) = orbit.gpm_overpasses(START, END, seed=SEED)
    return found


@pytest.fixture(scope="module")
def scenes(overpass):
    world = World(SEED)
    margin = dt.timedelta(minutes=10)
    return [world.scene(slot, "FY-4A", slot_window(overpass, slot, "FY-4A", margin, 3_000_000)) for slot in SLOTS]


@pytest.fixture(scope="module")
def gmi(overpass, scenes):
    return observe_gmi(overpass, scenes, seed=SEED)


@pytest.fixture(scope="module")
def dpr(overpass, scenes):
    return observe_dpr(overpass, scenes, seed=SEED)


@pytest.fixture(scope="module")
def files(gmi, dpr, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpm")
    return write_gmi_1c(gmi, out), write_dpr_2a(dpr, out)


def _footprint_ir(swath, scenes, shape):
    """AGRI 10.8 um brightness temperature under each footprint centre."""
    out = np.full(shape, np.nan, np.float32)
    which = footprint.nearest_scene(swath.time, scenes)
    for index in np.unique(which):
        scans = np.flatnonzero(which == index)
        rows, cols, ok = footprint.pixel_index(scenes[index], swath.lon[scans], swath.lat[scans])
        out[scans] = np.where(ok, scenes[index].bt["IR10.8"][rows, cols], np.nan)
    return out


def _corr(x, y):
    ok = np.isfinite(x) & np.isfinite(y)
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


# ----------------------------------------------------------------------------------------------------- orbit


def test_orbit_reproduces_real_schedule():
    # Granule 144 (DPR, 2014-03-08 22:09:50.674) and its equator crossing at 116.149 W, 65 orbits after the epoch.
    assert orbit.granule_number(dt.datetime(2014, 3, 8, 22, 10)) == 144
    assert abs((orbit.granule_start(144) - dt.datetime(2014, 3, 8, 22, 9, 50, 674000)).total_seconds()) < 1.0
    node = orbit.granule_start(144) + dt.timedelta(seconds=orbit.ORBIT_PERIOD_S / 4)
    position, _ = orbit.spacecraft_state(np.array([(node - orbit.EPOCH_START).total_seconds()]), None)
    assert abs(np.rad2deg(np.arctan2(position[0, 1], position[0, 0])) - -116.149) < 0.5
    assert abs(position[0, 2]) < 1.0
    assert orbit.GMI_S1.scans_per_orbit in (2958, 2959)
    assert orbit.DPR_FS.scans_per_orbit == 7925


def test_orbit_geometry():
    granule = orbit.granule_number(START)
    s1 = orbit.swath(orbit.GMI_S1, granule, np.arange(0, orbit.GMI_S1.scans_per_orbit, 5), SEED)
    fs = orbit.swath(orbit.DPR_FS, granule, np.arange(0, 400), SEED)
    assert np.abs(s1.sc_lat).max() == pytest.approx(65.0, abs=0.05)
    assert np.abs(s1.lat).max() < 70.0
    assert np.abs(fs.lat).max() <= 66.3  # nadir at 65 degrees plus half of the 245 km swath
    assert orbit.GMI_S1.swath_width_km == pytest.approx(904, abs=10)
    assert 780 < orbit.GMI_S2.swath_width_km < orbit.GMI_S1.swath_width_km
    assert orbit.DPR_FS.swath_width_km == pytest.approx(245, abs=1)
    radius = orbit.EARTH_RADIUS_KM
    along = np.linalg.norm(np.diff(orbit.unit_vectors(s1.lon[:, 110], s1.lat[:, 110]), axis=0), axis=-1) * radius / 5
    assert 12.5 < np.median(along) < 14.0
    along = np.linalg.norm(np.diff(orbit.unit_vectors(fs.lon[:, 24], fs.lat[:, 24]), axis=0), axis=-1) * radius
    assert 4.5 < np.median(along) < 5.5
    across = np.linalg.norm(np.diff(orbit.unit_vectors(fs.lon[0], fs.lat[0]), axis=0), axis=-1) * radius
    assert np.allclose(across, 245 / 48, rtol=0.02)
    zenith = fs.view_angle()
    assert zenith[:, 24].max() < 0.5 and 16 < zenith[:, 0].mean() < 19


def test_overpasses_cross_region_and_range(overpass):
    passes = orbit.gpm_overpasses(dt.datetime(2026, 7, 15), dt.datetime(2026, 7, 15, 12), seed=SEED)
    assert 5 <= len(passes) <= 8
    for one in passes:
        assert orbit.in_region(one.s1.lon, one.s1.lat, one.region).any(axis=1).all()
        assert one.granule_start <= one.start_time < one.end_time <= one.granule_end
        assert orbit.granule_number(one.start_time) == one.granule
        assert one.ascending == bool(np.all(np.diff(one.s1.sc_lat) > 0))
    other = orbit.gpm_overpasses(dt.datetime(2026, 7, 15), dt.datetime(2026, 7, 15, 12), seed=SEED + 1)
    assert [p.node_lon for p in other] != [p.node_lon for p in passes]
    assert START <= overpass.start_time and overpass.end_time < END


# -------------------------------------------------------------------------------------------- GMI physics


def test_gmi_ice_scattering_depresses_89ghz(overpass, scenes, gmi):
    tc, rain = gmi.tc["S1"], gmi.rain["S1"]
    pct = pct89(tc[..., 7], tc[..., 8])
    assert np.nanmean(pct[rain > 10]) < np.nanmean(pct[rain == 0]) - 20.0
    clear = observe_gmi(overpass, scenes, seed=SEED, config=GMIConfig(scattering=0.0))
    clear_pct = pct89(clear.tc["S1"][..., 7], clear.tc["S1"][..., 8])
    depression = clear_pct - pct
    assert np.nanmean(depression[rain > 10]) > 20.0
    assert abs(np.nanmean(depression[rain == 0])) < 5.0


def test_gmi_low_frequency_warming_ocean_vs_land(gmi):
    tc, rain, land = gmi.tc["S1"], gmi.rain["S1"], gmi.land["S1"]
    tb19h = tc[..., 3]
    ocean_signal = np.nanmean(tb19h[~land & (rain > 2)]) - np.nanmean(tb19h[~land & (rain == 0)])
    land_signal = np.nanmean(tb19h[land & (rain > 2)]) - np.nanmean(tb19h[land & (rain == 0)])
    assert ocean_signal > 20.0
    assert abs(land_signal) < 10.0 < ocean_signal - abs(land_signal)
    assert np.nanmedian(tc[..., 0][~land]) - np.nanmedian(tc[..., 1][~land]) > 40  # polarised ocean
    assert np.nanmedian(tc[..., 0][land]) - np.nanmedian(tc[..., 1][land]) < 20


def test_gmi_noise_and_determinism(overpass, scenes, gmi):
    again = observe_gmi(overpass, scenes, seed=SEED)
    np.testing.assert_array_equal(again.tc["S1"], gmi.tc["S1"])
    quiet = observe_gmi(overpass, scenes, seed=SEED, config=GMIConfig(noise=0.0))
    noise = (gmi.tc["S1"] - quiet.tc["S1"])[..., 7]
    assert 0.45 < np.nanstd(noise) < 0.7
    assert (gmi.quality["S1"] == 0).mean() > 0.8 and set(np.unique(gmi.quality["S1"])) <= {0, -1}


# -------------------------------------------------------------------------------------------- DPR physics


def test_dpr_zr_consistency(overpass, scenes):
    # One AGRI pixel per footprint: the near-surface Z scatters about the overpass's Z-R by zr_spread_db.
    dpr = observe_dpr(overpass, scenes, seed=SEED, config=DPRConfig(footprint_km=0.0))
    f, valid = dpr.fields, dpr.valid
    index = (f["binClutterFreeBottom"] - 1).astype(int)[..., None]
    z_near = np.take_along_axis(dpr.z_true, index, -1)[..., 0]
    bottom = np.take_along_axis(dpr.height, index, -1)[..., 0]
    a, b = dpr.zr[1]
    pick = valid & (dpr.rain_type == 1) & (dpr.rain > 0.5) & (bottom < dpr.freezing_level - 500) & np.isfinite(z_near)
    residual = z_near[pick] - 10 * np.log10(a * dpr.rain[pick] ** b)
    assert pick.sum() > 500
    assert abs(residual.mean()) < 0.8
    assert 0.8 * DPRConfig().zr_spread_db < residual.std() < 1.25 * DPRConfig().zr_spread_db
    assert 2.5 <= DPRConfig().zr_spread_db <= 4.0  # real drop-size variability


def test_dpr_beam_average(overpass, scenes, dpr):
    """Linear Z is averaged over the ~5 km beam: rain at the beam's edge gives echo over a dry centre pixel."""
    point = observe_dpr(overpass, scenes, seed=SEED, config=DPRConfig(footprint_km=0.0))
    dry_centre = dpr.valid & (dpr.rain == 0)
    assert (point.fields["typePrecip"][dry_centre] < 0).all()
    assert (dpr.fields["typePrecip"][dry_centre] > 0).sum() > 50


def test_dpr_attenuation_correction_error(overpass, scenes, dpr):
    """zFactorFinal carries the error of the path-attenuation correction, which grows with the rain."""
    exact = observe_dpr(overpass, scenes, seed=SEED, config=DPRConfig(pia_error=0.0))
    diff = dpr.fields["zFactorFinalNearSurface"] - exact.fields["zFactorFinalNearSurface"]
    light = np.isfinite(diff) & (dpr.rain > 0.5) & (dpr.rain < 3)
    heavy = np.isfinite(diff) & (dpr.rain > 8)
    assert light.sum() > 200 and heavy.sum() > 30
    assert np.std(diff[light]) < 0.3 < 0.6 < np.std(diff[heavy])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = dpr.fields["piaFinal"] / exact.fields["piaFinal"]
    assert 0.2 < np.nanstd(ratio[heavy]) < 0.4  # pia_error 0.3


def test_dpr_rain_type_misclassified_at_core_edges(dpr):
    echo = dpr.fields["typePrecip"] > 0
    wrong = echo & (np.where(dpr.rain_type == 1, 1, 2) != dpr.retrieved_type)
    share = dpr.convective_share
    pure = echo & ((share < 0.05) | (share > 0.95))
    mixed = echo & (share > 0.1) & (share < 0.9)
    assert pure.sum() > 500 and mixed.sum() > 30
    assert 0.01 < wrong[pure].mean() < 0.09
    assert wrong[mixed].mean() > 3 * wrong[pure].mean()
    np.testing.assert_array_equal(dpr.fields["typePrecip"][echo] // 10_000_000, dpr.retrieved_type[echo])


def test_dpr_rate_retrieved_from_measured_z(dpr):
    """precipRateNearSurface inverts zFactorFinalNearSurface with the nominal Z-R of the retrieved type."""
    f = dpr.fields
    echo = (f["typePrecip"] > 0) & np.isfinite(f["zFactorFinalNearSurface"])
    a = np.where(dpr.retrieved_type == 2, NOMINAL_ZR[2][0], NOMINAL_ZR[1][0])
    b = np.where(dpr.retrieved_type == 2, NOMINAL_ZR[2][1], NOMINAL_ZR[1][1])
    expected = (10 ** (f["zFactorFinalNearSurface"] / 10) / a) ** (1 / b)
    np.testing.assert_allclose(f["precipRateNearSurface"][echo], expected[echo], rtol=1e-4)
    assert dpr.zr[1] != NOMINAL_ZR[1]  # the overpass's true Z-R is not the retrieval's


def test_dpr_bright_band(dpr):
    f = dpr.fields
    height, z = dpr.height, dpr.z_true
    fl = dpr.freezing_level[..., None]
    strat = f["flagBB"] == 2
    conv = (f["typePrecip"] // 10_000_000 == 2) & (dpr.rain_type == 2)
    assert strat.sum() > 100 and conv.sum() > 20
    at_band = np.where(np.abs(height - (fl - 150)) < 150, z, -np.inf).max(-1)
    below = np.where(np.abs(height - (fl - 1200)) < 150, z, -np.inf).max(-1)
    both = np.isfinite(at_band) & np.isfinite(below)
    excess = np.subtract(at_band, below, out=np.full(at_band.shape, np.nan), where=both)
    assert (strat & both).sum() > 100
    assert np.median(excess[strat & both]) > 3.0
    assert (conv & both).sum() > 20
    assert np.all(excess[conv & both] < 1.0)
    assert not (f["flagBB"][conv] > 0).any()
    assert np.allclose(f["heightBB"][strat], dpr.freezing_level[strat] - 150, atol=1)


def test_dpr_detection_fill_and_clutter(dpr):
    f, valid = dpr.fields, dpr.valid
    finite = dpr.z_final[np.isfinite(dpr.z_final)]
    assert finite.min() >= 15.0
    measured = dpr.z_measured[valid]
    assert np.all((measured == NO_ECHO_MEASURED) | (measured >= MEASURED_FLOOR_DBZ))
    assert ((measured >= MEASURED_FLOOR_DBZ) & (measured < 12.0)).sum() > 100  # weak echoes kept, as in V07
    # Rain too weak for 15 dBZ is not detected.
    weak = valid & (dpr.rain > 0) & (np.nan_to_num(dpr.z_true, neginf=-99).max(-1) < 14.0)
    assert weak.any() and (f["typePrecip"][weak] == -1111).all()
    assert (f["precipRateNearSurface"][weak] == 0).all()
    clutter_depth = f["binRealSurface"] - f["binClutterFreeBottom"]
    assert (clutter_depth[valid] >= 4).all()
    by_ray = np.nanmean(np.where(valid, clutter_depth, np.nan), axis=0)
    assert by_ray[0] > by_ray[24] + 8 and by_ray[48] > by_ray[24] + 8
    surface = np.take_along_axis(dpr.z_measured, (f["binRealSurface"] - 1).astype(int)[..., None], -1)[..., 0]
    assert (surface[valid] >= 40).all()
    # zFactorFinal holds the clutter-free-bottom value down to the surface, and nothing below it.
    rows = np.argwhere(valid & (f["typePrecip"] > 0) & np.isfinite(f["zFactorFinalNearSurface"]))[:50]
    for i, j in rows:
        cfb, srf = f["binClutterFreeBottom"][i, j], f["binRealSurface"][i, j]
        profile = dpr.z_final[i, j]
        assert np.all(profile[cfb:srf] == profile[cfb - 1])
        assert np.isnan(profile[srf:]).all()


def test_pmw_and_radar_tied_to_rain_ir_weakly(overpass, scenes, gmi, dpr):
    """The premise: DPR and GMI strongly tied to the surface rain, AGRI's 10.8 um weakly (docs/simulation.md)."""
    r_gmi = _corr(-pct89(gmi.tc["S1"][..., 7], gmi.tc["S1"][..., 8]), gmi.rain["S1"])
    r_ir = _corr(-_footprint_ir(overpass.s1, scenes, gmi.rain["S1"].shape), gmi.rain["S1"])
    z_near = np.where(np.isfinite(dpr.fields["zFactorFinalNearSurface"]), dpr.fields["zFactorFinalNearSurface"], 15.0)
    r_dpr = _corr(np.where(dpr.valid, z_near, np.nan), dpr.rain)
    r_rate = _corr(dpr.fields["precipRateNearSurface"], dpr.rain)
    assert 0.45 < r_gmi < 0.8
    assert 0.75 < r_dpr < 0.9
    assert 0.8 < r_rate < 0.92  # not a copy of the rain
    assert 0.15 < r_ir < 0.5
    assert r_rate > r_gmi + 0.1 and r_dpr > r_gmi > r_ir + 0.1


def test_premise_over_land(overpass, scenes, gmi):
    """Over land PMW loses its emission signal, but the 89 GHz ice scattering still beats the IR."""
    land = gmi.land["S1"]
    rain = np.where(land, gmi.rain["S1"], np.nan)
    assert np.isfinite(rain).sum() > 5000 and (rain > 1).sum() > 500
    r_gmi = _corr(-pct89(gmi.tc["S1"][..., 7], gmi.tc["S1"][..., 8]), rain)
    r_ir = _corr(-_footprint_ir(overpass.s1, scenes, rain.shape), rain)
    ocean = np.where(~land, gmi.rain["S1"], np.nan)
    r_ocean = _corr(-pct89(gmi.tc["S1"][..., 7], gmi.tc["S1"][..., 8]), ocean)
    assert 0.4 < r_gmi < r_ocean
    assert r_gmi > r_ir + 0.1


def test_gmi_parallax_per_swath(overpass, scenes, gmi, monkeypatch):
    """89-183 GHz see the ice displaced by h tan(incidence) towards the satellite; 10-37 GHz are not displaced."""
    s1, s2 = overpass.s1, overpass.s2
    shifts = {}
    for name, sw in (("S1", s1), ("S2", s2)):
        rows, cols, valid = footprint.pixel_index(scenes[0], sw.lon, sw.lat)
        shift = gmi_model._parallax_shift(sw, np.nonzero(valid), scenes[0], gmi_model.INCIDENCE_DEG[name])
        shifts[name] = np.hypot(*shift.T).mean()
    pixel = np.mean(footprint.pixel_size_km(scenes[0]))
    assert shifts["S1"] * pixel == pytest.approx(7.0 * np.tan(np.deg2rad(52.8)), rel=0.2)
    assert shifts["S2"] < shifts["S1"]
    monkeypatch.setattr(gmi_model, "ICE_HEIGHT_KM", 0.0)
    flat = observe_gmi(overpass, scenes, seed=SEED)
    np.testing.assert_array_equal(flat.tc["S1"][..., :7], gmi.tc["S1"][..., :7])
    assert np.nanmax(np.abs(flat.tc["S1"][..., 7] - gmi.tc["S1"][..., 7])) > 10.0
    monkeypatch.setattr(gmi_model, "INCIDENCE_DEG", {"S1": 52.8, "S2": 52.8})
    same_angle = observe_gmi(overpass, scenes, seed=SEED)
    np.testing.assert_array_equal(same_angle.tc["S1"][..., :7], gmi.tc["S1"][..., :7])
    assert not np.allclose(same_angle.tc["S2"], flat.tc["S2"], equal_nan=True)


def test_dpr_determinism(overpass, scenes, dpr):
    again = observe_dpr(overpass, scenes, seed=SEED)
    np.testing.assert_array_equal(again.z_final, dpr.z_final)
    np.testing.assert_array_equal(again.fields["typePrecip"], dpr.fields["typePrecip"])
    other = observe_dpr(overpass, scenes, seed=SEED + 1)
    assert not np.array_equal(np.nan_to_num(other.z_final), np.nan_to_num(dpr.z_final))


# ------------------------------------------------------------------------------------------------- files


def test_gmi_round_trip(gmi, files):
    path = files[0]
    name = parse_gpm_filename(path.name)
    assert re.match(r"1C\.GPM\.GMI\.XCAL2016-C\.\d{8}-S\d{6}-E\d{6}\.\d{6}\.V07A\.HDF5$", path.name)
    assert name.granule == gmi.overpass.granule
    ds = read_gmi_1c(path)
    for swath, sw in (("S1", gmi.overpass.s1), ("S2", gmi.overpass.s2)):
        np.testing.assert_array_equal(ds[f"{swath}_Tc"].values, gmi.tc[swath])
        np.testing.assert_array_equal(ds[f"{swath}_Quality"].values, gmi.quality[swath])
        np.testing.assert_array_equal(ds[f"{swath}_Latitude"].values, sw.lat.astype(np.float32))
        np.testing.assert_array_equal(ds[f"{swath}_time"].values, sw.time.astype("datetime64[ns]"))
    assert list(ds.nchannel1.values) == ["10.65V", "10.65H", "18.7V", "18.7H", "23.8V", "36.64V", "36.64H",
                                         "89.0V", "89.0H"]
    assert ds.attrs["granule_number"] == gmi.overpass.granule
    assert ds.attrs["start_time"] == str(gmi.overpass.s1.time[0])


def test_dpr_round_trip(dpr, files):
    ds = read_dpr_2a(files[1])
    valid = dpr.valid
    f = dpr.fields
    np.testing.assert_array_equal(ds.zFactorFinal.values, dpr.z_final)
    np.testing.assert_array_equal(ds.typePrecip.values, f["typePrecip"])
    np.testing.assert_array_equal(ds.flagBB.values, f["flagBB"])
    np.testing.assert_array_equal(ds.precipRateNearSurface.values, f["precipRateNearSurface"])
    height_bb = np.where((f["flagBB"] > 0), f["heightBB"], np.nan)
    np.testing.assert_array_equal(ds.heightBB.values, height_bb)
    np.testing.assert_array_equal(ds.binClutterFreeBottom.values, np.where(valid, f["binClutterFreeBottom"], np.nan))
    np.testing.assert_array_equal(ds.binRealSurface.values, np.where(valid, f["binRealSurface"], np.nan))
    np.testing.assert_array_equal(ds.elevation.values, np.where(valid, dpr.elevation, np.nan))
    np.testing.assert_array_equal(ds.localZenithAngle.values, dpr.local_zenith)
    np.testing.assert_array_equal(ds.time.values, dpr.overpass.fs.time.astype("datetime64[ns]"))
    assert set(np.unique(ds.rain_type.values)) <= {-1, 0, 1, 2}
    assert ds.attrs["granule_number"] == dpr.overpass.granule


def _datasets(h5):
    found = {}
    h5.visititems(lambda name, obj: found.setdefault(name, obj) if isinstance(obj, h5py.Dataset) else None)
    return found


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


@pytest.mark.parametrize("index, real", [(0, REAL_GMI), (1, REAL_DPR)])
def test_layout_matches_real_files(files, index, real):
    with h5py.File(files[index], "r") as ours, h5py.File(real, "r") as theirs:
        mine, reference = _datasets(ours), _datasets(theirs)
        missing = sorted(set(mine) - set(reference))
        assert not missing, f"datasets absent from the real file: {missing}"
        for path, dset in mine.items():
            ref = reference[path]
            if ref.dtype.kind == "S":  # fixed-length text: its length depends on the text
                assert dset.dtype.kind == "S" and dset.shape == ref.shape, path
            else:
                assert dset.dtype == ref.dtype, path
            assert dset.ndim == ref.ndim, path
            for key in ("DimensionNames", "Units", "units", "CodeMissingValue", "_FillValue", "LongName"):
                assert (key in dset.attrs) == (key in ref.attrs), f"{path} {key}"
                if key in ref.attrs:
                    assert _text(dset.attrs[key]) == _text(ref.attrs[key]), f"{path} {key}"
            if ref.ndim > 2 and ref.shape[-1] <= 176 and "nscan" not in _text(ref.attrs["DimensionNames"]).split(
                    ",")[-1]:
                assert dset.shape[2:] == ref.shape[2:], path
        for group in (name for name, obj in theirs.items() if isinstance(obj, h5py.Group)):
            assert set(theirs[group].attrs) == set(ours[group].attrs), group
        for key in theirs.attrs:
            assert set(parse_pvl(ours.attrs[key])) == set(parse_pvl(theirs.attrs[key])), key
        assert parse_pvl(ours.attrs["Simulation"])["Simulated"] == "TRUE"
        header = parse_pvl(ours.attrs["FileHeader"])
        real_header = parse_pvl(theirs.attrs["FileHeader"])
        assert len(header["GranuleNumber"]) == (6 if index == 0 else len(str(int(header["GranuleNumber"]))))
        assert header["FileName"] == files[index].name
        for key in ("DOI", "AlgorithmID", "AlgorithmVersion", "SatelliteName", "InstrumentName", "ProductVersion",
                    "TimeInterval", "GranuleStart"):
            assert header[key] == real_header[key]


# ------------------------------------------------------------------------------------------------- archive


def test_small_archive(tmp_path):
    from satpy import Scene

    region = (100.0, 112.0, 20.0, 32.0)
    archive = simulate_archive(tmp_path, seed=SEED, start=dt.datetime(2026, 7, 15, 5),
                               end=dt.datetime(2026, 7, 15, 6), region=region, progress=False)
    assert len(archive.overpasses) == 1
    assert len(archive.gmi) == 1 and len(archive.dpr) == 1
    assert len(archive.agri) == 2 and len(archive.cldas) == 1
    agri_times = [dt.datetime.strptime(p.name.split("_")[9], "%Y%m%d%H%M%S") for p in archive.agri]
    for path, reader in ((archive.gmi[0], read_gmi_1c), (archive.dpr[0], read_dpr_2a)):
        ds = reader(path)
        times = ds["S1_time" if "S1_time" in ds.coords else "time"].values.astype("datetime64[ms]").astype(object)
        gaps = np.array([[abs((t - a).total_seconds()) for a in agri_times] for t in times])
        assert gaps.min(axis=1).max() <= 600
    scene = Scene(reader="agri_fy4a_l1", filenames=[str(archive.agri[0])])
    scene.load(["C12"])
    assert np.isfinite(scene["C12"].values).mean() > 0.99
    assert archive.elevation.is_file()
    again = orbit.gpm_overpasses(dt.datetime(2026, 7, 15, 5), dt.datetime(2026, 7, 15, 6), region=region, seed=SEED)
    assert again[0].label == archive.overpasses[0].label
