"""Tests of the simulated world and of the AGRI L1 writer, read back through satpy's real readers."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pytest

from satpy_prenet.channels import IR_BANDS, READERS, channel_name
from satpy_prenet.evaluation.metrics import scores
from satpy_prenet.synthetic import (
    World,
    WorldConfig,
    agri_file,
    agri_filename,
    bt_to_counts,
    calibration_table,
    disc_area,
    quantise_bt,
    quantise_reflectance,
    scan_times,
    write_agri_l1,
)
from satpy_prenet.synthetic.fields import powerlaw_field, radial_spectrum, rng_for
from satpy_prenet.synthetic.geometry import Window, cos_satellite_zenith, lonlat_to_pixel, parallax_per_km

SEED = 7
START = dt.datetime(2019, 6, 3, 4, 0)
# Top of the disc: space in the first lines, limb, then disc; small enough for quick files.
EDGE_REGION = (0, 72, 1300, 1420)
# Tropical window west of the sub-satellite point.
TROPICS = (1150, 1250, 1000, 1128)


@pytest.fixture(scope="module")
def world() -> World:
    return World(SEED)


@pytest.fixture(scope="module")
def full_disc(world: World):
    """One default full-disc FY-4A scene (about 10 s the first time in a process)."""
    return world.scene(START, "FY-4A")


def _load(path, platform, names):
    from satpy import Scene

    scn = Scene(reader=READERS[platform], filenames=[str(path)])
    scn.load(names)
    return scn


# --- file layout and satpy round trip -------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["FY-4A", "FY-4B"])
def test_regional_file_reads_back_through_satpy(world, tmp_path, platform):
    scene = world.scene(START, platform, EDGE_REGION)
    path = write_agri_l1(scene, tmp_path)
    lon_field = "1047E" if platform == "FY-4A" else "1330E"
    assert path.name == (f"{platform.replace('-', '')}-_AGRI--_N_REGC_{lon_field}_L1-_FDI-_MULT_NOM_"
                         "20190603040000_20190603040416_4000M_V0001.HDF")
    names = [channel_name(band.key, platform) for band in IR_BANDS]
    scn = _load(path, platform, names + ["C02"])
    expected_area = disc_area(platform)[Window(*EDGE_REGION).slices]
    assert scn.start_time == START
    for band in IR_BANDS:
        data = scn[channel_name(band.key, platform)]
        values = data.values
        assert data.attrs["platform_name"] == platform
        assert data.attrs["sensor"] == "agri"
        assert data.attrs["area"] == expected_area
        np.testing.assert_allclose(data.attrs["area"].area_extent, expected_area.area_extent, rtol=0, atol=1e-3)
        # Exactly what quantise_bt predicts, NaN exactly in space.
        np.testing.assert_array_equal(values, quantise_bt(scene.bt[band.key], band.key, platform))
        np.testing.assert_array_equal(np.isnan(values), ~scene.on_disc)
        # Within one look-up-table step of the simulated (continuous) brightness temperature.
        table = calibration_table(platform, band.key).astype(np.float64)
        steps = np.diff(table)[np.clip(np.searchsorted(table, values[scene.on_disc]) - 1, 0, table.size - 2)]
        assert np.all(np.abs(values[scene.on_disc] - scene.bt[band.key][scene.on_disc]) <= steps + 1e-3)
    assert np.isnan(values).any() and np.isfinite(values).any()
    np.testing.assert_array_equal(scn["C02"].values, quantise_reflectance(scene.reflectance["C02"], "C02", platform))


@pytest.mark.parametrize("platform", ["FY-4A", "FY-4B"])
def test_bands_load_by_wavelength(world, tmp_path, platform):
    path = write_agri_l1(world.scene(START, platform, TROPICS), tmp_path)
    from satpy import Scene

    for band in IR_BANDS:
        scn = Scene(reader=READERS[platform], filenames=[str(path)])
        if band.wavelength == 3.72:
            # Two channels (C07 high / C08 low range) share 3.72 um: satpy refuses to choose.
            with pytest.raises(KeyError, match="Unknown datasets"):
                scn.load([band.wavelength])
            continue
        scn.load([band.wavelength])
        (loaded,) = list(scn.keys())
        assert loaded["name"] == channel_name(band.key, platform)
        assert np.isfinite(scn[band.wavelength].values).all()


def test_file_layout_per_platform(world, tmp_path):
    import h5py

    paths = {p: write_agri_l1(world.scene(START, p, TROPICS), tmp_path) for p in ("FY-4A", "FY-4B")}
    with h5py.File(paths["FY-4A"]) as f:
        assert {f"NOMChannel{i:02d}" for i in range(1, 15)} <= set(f)
        assert f["NOMChannel12"].dtype == np.uint16 and f["CALChannel12"].shape == (4096,)
        assert f["CALChannel07"].shape == (65536,)
        assert list(f["NOMChannel07"].attrs["valid_range"]) == [0, 65534]
        assert f["CALIBRATION_COEF(SCALE+OFFSET)"].shape == (14, 2)
        assert f.attrs["Satellite Name"] == b"FY4A"
        lut = f["CALChannel12"][:]
        assert np.all(np.diff(lut) > 0) and 165 < lut[0] < 200 and 320 < lut[-1] < 360
    with h5py.File(paths["FY-4B"]) as f:
        assert {"Data", "Calibration"} <= set(f)
        assert {f"NOMChannel{i:02d}" for i in range(1, 16)} <= set(f["Data"])
        assert f["Calibration/CALIBRATION_COEF(SCALE+OFFSET)"].shape == (15, 2)
        assert int(f.attrs["End Line Number"][0]) == TROPICS[1] - 1
        assert int(f.attrs["Begin Pixel Number"][0]) == TROPICS[2]


def test_file_names():
    assert agri_filename("FY-4A", dt.datetime(2019, 6, 3, 0, 30)) == (
        "FY4A-_AGRI--_N_DISK_1047E_L1-_FDI-_MULT_NOM_20190603003000_20190603004459_4000M_V0001.HDF")
    assert agri_filename("FY-4B", dt.datetime(2022, 1, 1, 12, 0)).startswith("FY4B-_AGRI--_N_DISK_1330E_L1-_FDI-")


def test_failed_write_leaves_no_file(world, tmp_path, monkeypatch):
    scene = world.scene(START, "FY-4A", TROPICS)

    def explode(handle, *args, **kwargs):
        handle.create_dataset("NOMChannel01", data=np.zeros((2, 2), np.uint16))
        raise RuntimeError("disk full")

    monkeypatch.setattr(agri_file, "_write_contents", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        write_agri_l1(scene, tmp_path)
    assert os.listdir(tmp_path) == []


def test_writer_rejects_mismatches(world, tmp_path):
    scene = world.scene(START, "FY-4A", TROPICS)
    with pytest.raises(ValueError, match="FY-4A"):
        write_agri_l1(scene, tmp_path, platform="FY-4B")
    with pytest.raises(ValueError, match="not inside"):
        write_agri_l1(scene, tmp_path, region=(0, 10, 0, 10))
    assert os.listdir(tmp_path) == []


# --- calibration -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("band", ["IR3.72H", "IR3.72L", "WV6.25", "IR10.8", "IR13.5"])
def test_quantisation(band):
    bt = np.array([150.0, 185.0, 215.3, 250.7, 288.1, 301.9, 500.0, np.nan])
    counts = bt_to_counts(bt, band, "FY-4B")
    assert counts[-1] == 65535 and counts[:-1].max() <= (65534 if band == "IR3.72H" else 4095)
    as_read = quantise_bt(bt, band, "FY-4B")
    assert np.isnan(as_read[-1]) and as_read.dtype == np.float32
    np.testing.assert_array_equal(quantise_bt(as_read, band, "FY-4B"), as_read)
    table = calibration_table("FY-4B", band)
    assert as_read[0] == table[0] and as_read[-2] == table[bt_to_counts(np.array([1e3]), band, "FY-4B")[0]]
    step = np.diff(table.astype(np.float64))
    inside = (bt > table[0]) & (bt < table[-2])
    assert np.all(np.abs(as_read[inside] - bt[inside]) <= step.max())


# --- the simulated world ---------------------------------------------------------------------------------


def test_reproducible_and_seed_dependent(world):
    again = World(SEED).scene(START, "FY-4A", TROPICS)
    first = world.scene(START, "FY-4A", TROPICS)
    for key in first.bt:
        np.testing.assert_array_equal(first.bt[key], again.bt[key])
    np.testing.assert_array_equal(first.rain_rate, again.rain_rate)
    other = World(SEED + 1).scene(START, "FY-4A", TROPICS)
    assert not np.array_equal(first.bt["IR10.8"], other.bt["IR10.8"])


def test_a_scene_without_agri_view_has_the_same_atmosphere_and_rain(world):
    """The archive's scenes that only feed the hourly truth skip AGRI's view (``observe=False``)."""
    observed = world.scene(START, "FY-4A", TROPICS)
    unobserved = world.scene(START, "FY-4A", TROPICS, observe=False)
    assert not unobserved.bt and not unobserved.reflectance
    for name in ("rain_rate", "rain_type", "cloud_top_height", "ice_water_path", "surface_temperature", "lat", "lon"):
        np.testing.assert_array_equal(getattr(unobserved, name), getattr(observed, name), err_msg=name)


def test_window_equals_full_disc_slice(world, full_disc):
    for region in (TROPICS, EDGE_REGION, (2000, 2048, 300, 420)):
        window = world.scene(START, "FY-4A", region)
        part = full_disc.subset(region)
        for key in window.bt:
            np.testing.assert_array_equal(window.bt[key], part.bt[key])
        for name in ("rain_rate", "rain_type", "freezing_level", "cloud_top_height", "lat"):
            np.testing.assert_array_equal(getattr(window, name), getattr(part, name))


def test_scene_contents(full_disc):
    scene = full_disc
    disc = scene.on_disc
    assert 0.74 < disc.mean() < 0.79
    for values in (*scene.bt.values(), *scene.reflectance.values(), scene.rain_rate, scene.freezing_level):
        assert values.dtype == np.float32 and values.shape == (2748, 2748)
        assert np.isnan(values[~disc]).all() and np.isfinite(values[disc]).all()
    assert scene.land[disc].mean() > 0.15 and scene.elevation[disc].max() > 4.0
    tropics = disc & (np.abs(scene.lat) < 15)
    assert 4.0 < np.median(scene.freezing_level[tropics]) < 5.5
    assert np.median(scene.freezing_level[disc & (scene.lat > 50)]) < 3.0
    assert set(np.unique(scene.rain_type[disc])) == {0, 1, 2, 3}


def test_rain_intensity_distribution(full_disc):
    rain = full_disc.rain_rate[full_disc.on_disc]
    assert rain.min() >= 0
    raining = rain[rain >= 0.1]
    fraction = raining.size / rain.size
    assert 0.03 < fraction < 0.14
    assert 0.6 < np.mean(raining < 2.0) < 0.9  # most raining pixels are light
    assert raining.max() > 80.0
    assert 2e-4 < np.mean(raining > 50.0) < 1e-2  # but a heavy tail exists


def test_weak_ir_rain_correlation(full_disc):
    disc = full_disc.on_disc
    r = np.corrcoef(-full_disc.bt["IR10.8"][disc], full_disc.rain_rate[disc])[0, 1]
    assert 0.15 < r < 0.3  # 0.18-0.22 on the discs of benchmarks/world_calibration.py


def test_cold_tops_are_a_poor_rain_mask(full_disc):
    """As hard for IR as the real world: cold non-raining anvils and cirrus, warm rain, a GPI CSI of 0.2-0.3."""
    disc = full_disc.on_disc
    bt, rain = full_disc.bt["IR10.8"][disc], full_disc.rain_rate[disc]
    wet, cold = rain >= 0.1, bt < 235
    assert 0.55 < 1 - wet[cold].mean() < 0.85  # most cold pixels do not rain
    assert 0.25 < (bt[wet] > 250).mean() < 0.65  # much of the rain falls from warm tops
    gpi = scores(np.where(bt < 235, 3.0, 0.0), rain)
    assert 0.15 < gpi.csi < 0.32 and gpi.far > 0.5


def test_parallax_geometry():
    lon, lat = np.array([104.7, 104.7, 150.0]), np.array([0.0, 45.0, 0.0])
    dline, dcol = parallax_per_km("FY-4A", lon, lat)
    assert np.abs([dline[0], dcol[0], dcol[1], dline[2]]).max() < 1e-3  # nadir; along the meridian / equator
    assert dline[1] < 0 < dcol[2]  # displaced away from the sub-satellite point: north, east
    zenith = np.arccos(cos_satellite_zenith("FY-4A", lon, lat))
    line, col = lonlat_to_pixel("FY-4A", lon, lat)
    line_north, _ = lonlat_to_pixel("FY-4A", lon[1:2], lat[1:2] + 1.0 / 111.2)  # one km north
    _, col_east = lonlat_to_pixel("FY-4A", lon[2:] + 1.0 / 111.2, lat[2:])  # one km east
    assert dline[1] == pytest.approx(np.tan(zenith[1]) * (line_north[0] - line[1]), rel=0.05)
    assert dcol[2] == pytest.approx(np.tan(zenith[2]) * (col_east[0] - col[2]), rel=0.05)


@pytest.mark.parametrize("region, axis, expected", [((250, 370, 1300, 1450), 0, (-3, -2, -1)),
                                                    ((1300, 1450, 2300, 2450), 1, (1, 2, 3, 4)),
                                                    ((1320, 1430, 1320, 1430), 0, (0,))])
def test_agri_sees_cloud_tops_displaced(world, region, axis, expected):
    """The cloud tops AGRI sees lie away from the sub-satellite point of the clouds (and of their rain)."""
    scene = world.scene(START, "FY-4A", region)
    top = np.nan_to_num(scene.cloud_top_height)[8:-8, 8:-8].ravel()

    def match(shift):
        return np.corrcoef(top, np.roll(-scene.bt["IR10.8"], -shift, axis)[8:-8, 8:-8].ravel())[0, 1]

    assert max(range(-5, 6), key=match) in expected


def test_brightness_temperature_physics(full_disc):
    scene = full_disc
    disc = scene.on_disc
    bt = scene.bt
    clear = disc & np.isnan(scene.cloud_top_height)
    tropics_clear = clear & (np.abs(scene.lat) < 20) & (scene.satellite_zenith < 50)
    assert 230 < np.median(bt["WV6.25"][tropics_clear]) < 250  # upper-tropospheric humidity
    assert np.median(bt["WV6.25"][tropics_clear]) < np.median(bt["WV7.10"][tropics_clear])
    assert np.median(bt["IR13.5"][tropics_clear]) < np.median(bt["IR10.8"][tropics_clear]) - 15
    assert 290 < np.median(bt["IR10.8"][tropics_clear]) < 305
    # Cold deep-convective tops and the split window of thin cirrus.
    assert 185 < np.percentile(bt["IR10.8"][disc], 0.1) < 205
    thin_ice = disc & (scene.cloud_optical_depth > 0.5) & (scene.cloud_optical_depth < 3) & (
        scene.cloud_top_temperature < 235)
    thick = disc & (scene.cloud_optical_depth > 50)
    split_thin = np.median(bt["IR10.8"][thin_ice] - bt["IR12.0"][thin_ice])
    split_thick = np.median(bt["IR10.8"][thick] - bt["IR12.0"][thick])
    assert split_thin > split_thick + 1.0
    # Limb cooling over clear ocean.
    ocean_clear = clear & ~scene.land & (np.abs(scene.lat) < 30)
    assert (np.median(bt["IR10.8"][ocean_clear & (scene.satellite_zenith > 70)])
            < np.median(bt["IR10.8"][ocean_clear & (scene.satellite_zenith < 30)]) - 3)
    # Noise of a few tenths of a kelvin: differences of neighbouring clear pixels.
    assert 0.1 < np.median(np.abs(np.diff(bt["IR10.8"][1300:1400, 1300:1400], axis=1))) < 1.5


def test_sequence_advects_and_evolves(world):
    first, second = world.scenes(scan_times(START, 2), "FY-4A", (1100, 1300, 900, 1150))
    a, b = first.bt["IR10.8"], second.bt["IR10.8"]
    assert second.start_time - first.start_time == dt.timedelta(minutes=15)
    assert not np.array_equal(a, b)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.7


def _rainy_window(scene, size=96):
    """A window of ``size`` pixels centred on the heaviest rain of a full-disc scene."""
    line, col = np.unravel_index(np.nanargmax(scene.rain_rate), scene.rain_rate.shape)
    line0 = int(np.clip(line - size // 2, 0, 2748 - size))
    col0 = int(np.clip(col - size // 2, 0, 2748 - size))
    return (line0, line0 + size, col0, col0 + size)


def test_config_knobs(world, full_disc):
    region = _rainy_window(full_disc)
    noiseless = World(SEED, WorldConfig(ir_noise=0.0)).scene(START, "FY-4A", region)
    noisy = world.scene(START, "FY-4A", region)
    diff = noisy.bt["IR10.8"] - noiseless.bt["IR10.8"]
    assert 0.05 < np.nanstd(diff) < 1.0
    np.testing.assert_array_equal(noisy.rain_rate, noiseless.rain_rate)
    wetter = World(SEED, WorldConfig(rain_scale=2.0)).scene(START, "FY-4A", region)
    assert np.nansum(noisy.rain_rate) > 0
    assert np.nansum(wetter.rain_rate) > 1.5 * np.nansum(noisy.rain_rate)
    with pytest.raises(ValueError):
        WorldConfig(ir_rain_coupling=1.5)


def test_power_law_fields():
    field = powerlaw_field(rng_for(1), (512, 512), 3.0, min_scale=2.0)
    k, psd = radial_spectrum(field)
    band = (k > 0.01) & (k < 0.15)
    slope = np.polyfit(np.log(k[band]), np.log(psd[band]), 1)[0]
    assert -3.4 < slope < -2.6
    assert abs(field.std() - 1) < 1e-3


# --- full disc through satpy (slow) ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("platform", ["FY-4A", "FY-4B"])
def test_full_disc_file_reads_back(world, full_disc, tmp_path, platform):
    scene = full_disc if platform == "FY-4A" else world.scene(START, platform)  # the FY-4A disc is made once
    path = write_agri_l1(scene, tmp_path)
    assert "_N_DISK_" in path.name
    name = channel_name("IR10.8", platform)
    scn = _load(path, platform, [name])
    data = scn[name]
    assert data.shape == (2748, 2748)
    assert data.attrs["area"] == disc_area(platform)
    assert data.attrs["area"].area_id == "DISK_4000m"
    np.testing.assert_array_equal(data.values, quantise_bt(scene.bt["IR10.8"], "IR10.8", platform))


def test_atomic_path_leaves_the_final_file_or_nothing(tmp_path):
    from satpy_prenet.atomic import atomic_path

    final = tmp_path / "out" / "file.bin"
    with pytest.raises(RuntimeError), atomic_path(final) as partial:
        partial.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert list((tmp_path / "out").iterdir()) == []
    with atomic_path(final) as partial:
        partial.write_bytes(b"whole")
        assert not final.exists()
    assert final.read_bytes() == b"whole"
    assert list((tmp_path / "out").iterdir()) == [final]
