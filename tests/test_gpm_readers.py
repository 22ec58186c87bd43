"""The GPM readers on real PPS granules cut to 10 scans x 10 pixels (tests/data/gpm, see the README there)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from satpy_prenet.data.gpm import (
    GMI_CHANNELS,
    GPMFileError,
    parse_gpm_filename,
    parse_pvl,
    read_dpr_2a,
    read_gmi_1c,
)

DATA = Path(__file__).parent / "data" / "gpm"
GMI = DATA / "1C.GPM.GMI.XCAL2016-C.20140304-S175932-E193159.000079.V07A.HDF5"
DPR7 = DATA / "2A.GPM.DPR.V9-20211125.20140308-S220950-E234217.000144.V07A.HDF5"
DPR6 = DATA / "2A.GPM.DPR.V8-20180723.20140308-S220950-E234217.000144.V06A.HDF5"
FILL = np.float32(-9999.9)


def _header(path):
    with h5py.File(path, "r") as h5:
        return parse_pvl(h5.attrs["FileHeader"])


def _raw(path, name):
    with h5py.File(path, "r") as h5:
        return h5[name][()]


def _pps_time(text):
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


def _copy(path, tmp_path):
    return Path(shutil.copy(path, tmp_path / path.name))


@pytest.fixture(scope="module")
def gmi():
    return read_gmi_1c(GMI)


@pytest.fixture(scope="module")
def dpr7():
    return read_dpr_2a(DPR7)


@pytest.fixture(scope="module")
def dpr6():
    return read_dpr_2a(DPR6)


# --- file names and headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [GMI, DPR7, DPR6], ids=["gmi", "dpr-v07", "dpr-v06"])
def test_file_name_agrees_with_file_header(path):
    header = _header(path)
    name = parse_gpm_filename(path)
    assert header["FileName"] == path.name
    assert name.satellite == header["SatelliteName"] == "GPM"
    assert name.instrument == header["InstrumentName"]
    assert name.version == header["ProductVersion"]
    assert name.granule == int(header["GranuleNumber"])
    assert name.extension == "HDF5"
    # The name's start is the header's start cut to the second; its end differs by up to a second or two.
    assert dt.timedelta(0) <= _pps_time(header["StartGranuleDateTime"]) - name.start < dt.timedelta(seconds=1)
    assert abs(_pps_time(header["StopGranuleDateTime"]) - name.end) < dt.timedelta(seconds=2)


def test_parse_gpm_filename_fields():
    name = parse_gpm_filename(DPR6.name)
    assert (name.level, name.satellite, name.instrument, name.algorithm) == ("2A", "GPM", "DPR", "V8-20180723")
    assert (name.start, name.end) == (dt.datetime(2014, 3, 8, 22, 9, 50), dt.datetime(2014, 3, 8, 23, 42, 17))
    assert (name.granule, name.version) == (144, "V06A")


def test_parse_gpm_filename_variants():
    nrt = parse_gpm_filename("2A.GPM.DPR.V920211125.20220818-S004128-E011127.V07A.RT-H5")
    assert (nrt.granule, nrt.extension, nrt.algorithm) == (None, "RT-H5", "V920211125")
    over_midnight = parse_gpm_filename("1C.GPM.GMI.XCAL2016-C.20200705-S231057-E004329.036116.V07A.HDF5")
    assert over_midnight.end == dt.datetime(2020, 7, 6, 0, 43, 29)
    assert over_midnight.end - over_midnight.start == dt.timedelta(hours=1, minutes=32, seconds=32)
    remapped = parse_gpm_filename("/archive/1C-R.GPM.GMI.XCAL2016-C.20140304-S175932-E193159.000079.V07A.HDF5")
    assert (remapped.level, remapped.granule) == ("1C-R", 79)
    imerg = parse_gpm_filename("3B-HHR.MS.MRG.3IMERG.20000601-S000000-E002959.0000.V07A.HDF5")
    assert (imerg.satellite, imerg.granule) == ("MS", 0)


@pytest.mark.parametrize("name", ["2A.GPM.DPR.V9-20211125.20140308-S220950.000144.V07A.HDF5",
                                  "2A.GPM.DPR.V9-20211125.20140308-S220950-E234217.000144.V07A.nc",
                                  "something.h5"])
def test_parse_gpm_filename_rejects(name):
    with pytest.raises(ValueError, match="PPS file-name template"):
        parse_gpm_filename(name)


def test_parse_pvl():
    text = b"AlgorithmID=2BCMB;\nAlgorithmVersion=2BCMB_20220401  ;\nEphemerisFileName=;\n\nGranuleNumber=000079;\n"
    assert parse_pvl(text) == {"AlgorithmID": "2BCMB", "AlgorithmVersion": "2BCMB_20220401",
                               "EphemerisFileName": "", "GranuleNumber": "000079"}
    with pytest.raises(ValueError, match="without '='"):
        parse_pvl("AlgorithmID=1CGMI;\nbroken line;\n")


def test_parse_pvl_real_header():
    header = _header(DPR7)
    assert header["AlgorithmID"] == "2ADPR"
    assert header["AlgorithmVersion"] == "9.20211125"
    assert header["MissingData"] == "0"
    assert len(header) == 20


# --- GMI 1C -----------------------------------------------------------------------------------------------------


def test_gmi_structure(gmi):
    assert gmi["S1_Tc"].dims == ("nscan1", "npixel1", "nchannel1")
    assert gmi["S2_Tc"].dims == ("nscan2", "npixel2", "nchannel2")
    assert gmi["S1_Tc"].shape == (10, 10, 9)
    assert gmi["S2_Tc"].shape == (10, 10, 4)
    assert gmi["S1_Tc"].dtype == np.float32
    assert gmi["S1_Latitude"].dims == ("nscan1", "npixel1")
    assert gmi["S2_time"].dims == ("nscan2",)
    assert gmi["S1_time"].dtype == np.dtype("datetime64[ns]")
    assert gmi["S1_Tc"].attrs["units"] == "K"
    assert gmi["S1_Quality"].dtype == np.int8


def test_gmi_channels_from_long_name(gmi):
    assert list(gmi["nchannel1"].values) == ["10.65V", "10.65H", "18.7V", "18.7H", "23.8V", "36.64V", "36.64H",
                                             "89.0V", "89.0H"]
    assert list(gmi["nchannel2"].values) == ["166.0V", "166.0H", "183.31+-3V", "183.31+-7V"]
    np.testing.assert_allclose(gmi["S1_frequency"], [10.65, 10.65, 18.7, 18.7, 23.8, 36.64, 36.64, 89.0, 89.0])
    np.testing.assert_allclose(gmi["S2_frequency"], [166.0, 166.0, 183.31, 183.31])
    np.testing.assert_allclose(gmi["S2_frequency_offset"], [0, 0, 3, 7])
    assert "".join(gmi["S1_polarization"].values) + "".join(gmi["S2_polarization"].values) == "VHVHVVHVHVHVV"
    assert gmi["S1_Tc"].sel(nchannel1="89.0H").shape == (10, 10)


def test_gmi_channel_table_when_long_name_is_gone(gmi, tmp_path):
    path = _copy(GMI, tmp_path)
    with h5py.File(path, "r+") as h5:
        del h5["S1/Tc"].attrs["LongName"]
        del h5["S2/Tc"].attrs["LongName"]
    table = read_gmi_1c(path)
    for swath, dim in (("S1", "nchannel1"), ("S2", "nchannel2")):
        assert list(table[dim].values) == list(gmi[dim].values)
        np.testing.assert_array_equal(table[f"{swath}_frequency_offset"], gmi[f"{swath}_frequency_offset"])
        assert len(GMI_CHANNELS[swath]) == gmi.sizes[dim]


def test_gmi_fill_is_nan(gmi):
    # In the first 10 scans of this granule every Tc is fill and Quality is -1 (missing) everywhere.
    for swath in ("S1", "S2"):
        raw = _raw(GMI, f"{swath}/Tc")
        np.testing.assert_array_equal(np.isnan(gmi[f"{swath}_Tc"].values), raw == FILL)
        assert (gmi[f"{swath}_Quality"].values == -1).all()
        assert gmi[f"{swath}_Tc"].isnull().all()


def test_gmi_valid_values_pass_through(tmp_path):
    path = _copy(GMI, tmp_path)
    rng = np.random.default_rng(1)
    written = rng.uniform(120.0, 300.0, (3, 4, 9)).astype(np.float32)
    with h5py.File(path, "r+") as h5:
        h5["S1/Tc"][2:5, 3:7, :] = written
    data = read_gmi_1c(path)["S1_Tc"].values
    np.testing.assert_array_equal(data[2:5, 3:7], written)
    assert np.isnan(data).sum() == data.size - written.size
    valid = data[np.isfinite(data)]
    assert ((valid > 50) & (valid < 320)).all()


def test_gmi_geolocation_and_times(gmi):
    header = _header(GMI)
    start, stop = (np.datetime64(_pps_time(header[key])) for key in ("StartGranuleDateTime", "StopGranuleDateTime"))
    for swath in ("S1", "S2"):
        lat, lon = gmi[f"{swath}_Latitude"].values, gmi[f"{swath}_Longitude"].values
        assert np.isfinite(lat).all() and np.isfinite(lon).all()
        # The granule starts at its southernmost latitude.
        assert ((lat > -90) & (lat < -60)).all()
        assert ((lon >= -180) & (lon < 180)).all()
        times = gmi[f"{swath}_time"].values
        assert (np.diff(times) > np.timedelta64(0)).all()
        assert start <= times[0] and times[-1] <= stop
        seconds_of_day = (times - times.astype("datetime64[D]")) / np.timedelta64(1, "s")
        np.testing.assert_allclose(seconds_of_day, _raw(GMI, f"{swath}/ScanTime/SecondOfDay"), atol=1e-3)
    assert np.median(np.diff(gmi["S1_time"].values)) == np.timedelta64(1875, "ms")


def test_gmi_attrs(gmi):
    assert gmi.attrs["platform"] == "GPM"
    assert gmi.attrs["instrument"] == "GMI"
    assert gmi.attrs["level"] == "1C"
    assert gmi.attrs["algorithm"] == "XCAL2016-C"
    assert gmi.attrs["algorithm_version"] == "2016-C"
    assert gmi.attrs["product_version"] == "V07A"
    assert gmi.attrs["granule_number"] == parse_gpm_filename(GMI).granule == 79
    assert dt.datetime.fromisoformat(gmi.attrs["start_time"]) == dt.datetime(2014, 3, 4, 17, 59, 32, 154000)
    assert dt.datetime.fromisoformat(gmi.attrs["end_time"]) == dt.datetime(2014, 3, 4, 19, 32, 0, 627000)


# --- DPR 2A -----------------------------------------------------------------------------------------------------


def test_dpr_structure(dpr7, dpr6):
    for dpr in (dpr7, dpr6):
        assert dpr["zFactorFinal"].dims == ("nscan", "nray", "nbin")
        assert dpr["zFactorFinal"].shape == (10, 10, 176)
        assert dpr["zFactorFinal"].dtype == np.float32
        assert dpr["zFactorFinal"].attrs["units"] == "dBZ"
        assert dpr["Latitude"].dims == ("nscan", "nray")
        assert dpr["time"].dtype == np.dtype("datetime64[ns]")
        assert list(dpr["nbin"].values) == list(range(1, 177))
        for name in ("precipRateNearSurface", "heightBB", "binClutterFreeBottom", "binRealSurface", "elevation",
                     "localZenithAngle", "rain_type", "typePrecip"):
            assert dpr[name].dims == ("nscan", "nray"), name
    assert dpr7.attrs["swath"] == "FS" and dpr7["zFactorFinal"].attrs["source"] == "FS/SLV/zFactorFinal"
    assert dpr6.attrs["swath"] == "NS" and dpr6["zFactorFinal"].attrs["source"] == "NS/SLV/zFactorCorrected"


def test_dpr_v07_keeps_ku(dpr7):
    raw = _raw(DPR7, "FS/SLV/zFactorFinal")
    assert raw.shape == (10, 10, 176, 2)
    ku = raw[..., 0]
    np.testing.assert_array_equal(np.isnan(dpr7["zFactorFinal"].values), ku == FILL)
    np.testing.assert_array_equal(dpr7["zFactorFinal"].values[ku != FILL], ku[ku != FILL])
    # The Ka column of these outer rays is all fill (Ka covered only the inner swath in 2014): not what we read.
    assert (raw[..., 1] == FILL).all() and np.isfinite(dpr7["zFactorFinal"].values).any()
    np.testing.assert_array_equal(dpr7["binRealSurface"].values, _raw(DPR7, "FS/PRE/binRealSurface")[..., 0])
    np.testing.assert_array_equal(dpr7["localZenithAngle"].values, _raw(DPR7, "FS/PRE/localZenithAngle")[..., 0])


def test_dpr_v06_reflectivity(dpr6):
    raw = _raw(DPR6, "NS/SLV/zFactorCorrected")
    np.testing.assert_array_equal(np.isnan(dpr6["zFactorFinal"].values), raw == FILL)
    np.testing.assert_array_equal(dpr6["zFactorFinal"].values[raw != FILL], raw[raw != FILL])


@pytest.mark.parametrize("version", ["V07", "V06"])
def test_dpr_value_ranges(version, dpr7, dpr6):
    dpr = dpr7 if version == "V07" else dpr6
    z = dpr["zFactorFinal"].values
    valid = np.isfinite(z)
    assert valid.any()
    assert ((z[valid] > -30) & (z[valid] < 80)).all()
    # Reflectivity only in raining columns, and never below the surface bin (1-based bin numbers).
    raining = dpr["rain_type"].values > 0
    np.testing.assert_array_equal(valid.any(axis=2), raining)
    bins = np.broadcast_to(dpr["nbin"].values, z.shape)
    assert (bins[valid] <= np.broadcast_to(dpr["binRealSurface"].values[..., None], z.shape)[valid]).all()
    assert ((dpr["binRealSurface"].values >= 174) & (dpr["binRealSurface"].values <= 176)).all()
    assert ((dpr["binClutterFreeBottom"].values > 150) & (dpr["binClutterFreeBottom"].values <= 176)).all()
    rate = dpr["precipRateNearSurface"].values
    assert np.isfinite(rate).all() and (rate >= 0).all()
    # Surface rain implies a rain type; V06 also has two "other" columns with echo aloft but no surface rain.
    assert raining[rate > 0].all() and (rate[~raining] == 0).all() and (rate > 0).any()
    assert ((dpr["localZenithAngle"].values > 11) & (dpr["localZenithAngle"].values < 18.5)).all()
    assert ((dpr["elevation"].values >= -48) & (dpr["elevation"].values <= -47)).all()


@pytest.mark.parametrize(("version", "codes", "types"), [
    ("V07", {-1111, 19031000}, {0, 1}),
    ("V06", {-1111, 19031000, 39021000, 39023000}, {0, 1, 3}),
])
def test_dpr_rain_type_and_bright_band(version, codes, types, dpr7, dpr6):
    dpr, path, swath = (dpr7, DPR7, "FS") if version == "V07" else (dpr6, DPR6, "NS")
    raw = _raw(path, f"{swath}/CSF/typePrecip")
    np.testing.assert_array_equal(dpr["typePrecip"].values, raw)
    assert set(np.unique(raw)) == codes
    assert set(np.unique(dpr["rain_type"].values)) == types
    np.testing.assert_array_equal(dpr["rain_type"].values, np.where(raw > 0, raw // 10_000_000, 0))
    assert dpr["rain_type"].dtype == np.int8
    # heightBB holds -1111.1 (no rain) or 0 m with flagBB 0 (no bright band): both NaN.
    assert set(np.unique(_raw(path, f"{swath}/CSF/heightBB"))) == {np.float32(-1111.1), 0}
    assert dpr["heightBB"].isnull().all()


def test_dpr_codes_in_a_modified_copy(tmp_path):
    path = _copy(DPR7, tmp_path)
    with h5py.File(path, "r+") as h5:
        h5["FS/CSF/typePrecip"][1, :4] = [21000000, 31000000, -9999, 41000000]
        h5["FS/CSF/flagBB"][1, 0] = 1
        h5["FS/CSF/heightBB"][1, 0] = 4321.0
        h5["FS/SLV/precipRateNearSurface"][2, 3] = FILL
    dpr = read_dpr_2a(path)
    assert list(dpr["rain_type"].values[1, :4]) == [2, 3, -1, -1]
    assert dpr["heightBB"].values[1, 0] == 4321.0
    assert np.isnan(dpr["heightBB"].values).sum() == dpr["heightBB"].size - 1
    assert np.isnan(dpr["precipRateNearSurface"].values[2, 3])
    assert np.isnan(dpr["precipRateNearSurface"].values).sum() == 1


def test_dpr_geolocation_and_times(dpr7, dpr6):
    with h5py.File(DPR7, "r") as h5:
        jaxa = parse_pvl(h5.attrs["JAXAInfo"])
    header = _header(DPR7)
    start, stop = (np.datetime64(_pps_time(header[key])) for key in ("StartGranuleDateTime", "StopGranuleDateTime"))
    for dpr in (dpr7, dpr6):
        lat, lon = dpr["Latitude"].values, dpr["Longitude"].values
        assert ((lat > -90) & (lat < 90)).all() and ((lon >= -180) & (lon < 180)).all()
        # JAXAInfo gives the first scan's nadir; these outer rays lie within a couple of degrees.
        assert np.abs(lat[0] - float(jaxa["FirstScanLat"])).max() < 2
        assert np.abs(lon[0] - float(jaxa["FirstScanLon"])).max() < 2
        times = dpr["time"].values
        assert (np.diff(times) > np.timedelta64(0)).all()
        assert start <= times[0] and times[-1] <= stop
        assert times[0] == np.datetime64(_pps_time(jaxa["GranuleFirstScanUTCDateTime"]))
        assert np.median(np.diff(times)) == np.timedelta64(700, "ms")
    # The V06 and V07 geolocation of the same granule differ by well under a footprint.
    np.testing.assert_allclose(dpr6["Latitude"], dpr7["Latitude"], atol=0.01)
    np.testing.assert_array_equal(dpr6["time"], dpr7["time"])


def test_dpr_attrs(dpr7, dpr6):
    assert (dpr7.attrs["instrument"], dpr7.attrs["level"], dpr7.attrs["algorithm_id"]) == ("DPR", "2A", "2ADPR")
    assert dpr7.attrs["product_version"] == "V07A" and dpr6.attrs["product_version"] == "V06A"
    assert dpr7.attrs["algorithm"] == "V9-20211125" and dpr6.attrs["algorithm"] == "V8-20180723"
    # The DPR header writes GranuleNumber=144 without the name's zero padding.
    assert dpr7.attrs["granule_number"] == dpr6.attrs["granule_number"] == 144
    assert dpr7.attrs["frequency_band"] == "Ku"
    assert dpr7.attrs["source_file"] == str(DPR7)


# --- errors -----------------------------------------------------------------------------------------------------


def _raises(reader, path, problem):
    with pytest.raises(GPMFileError, match=re.escape(str(path)) + ".*" + problem) as info:
        reader(path)
    assert info.value.path == path
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("reader", [read_gmi_1c, read_dpr_2a])
def test_missing_empty_and_not_hdf5(reader, tmp_path):
    _raises(reader, tmp_path / GMI.name, "no such file")
    empty = tmp_path / "empty.HDF5"
    empty.touch()
    _raises(reader, empty, r"empty file \(0 bytes\)")
    noise = tmp_path / "noise.HDF5"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    _raises(reader, noise, "not an HDF5 file")
    _raises(reader, tmp_path, "not a regular file")


@pytest.mark.parametrize("keep", [0.5, 2048])
def test_truncated(keep, tmp_path):
    data = DPR7.read_bytes()
    path = tmp_path / DPR7.name
    path.write_bytes(data[: int(keep * len(data)) if keep < 1 else keep])
    _raises(read_dpr_2a, path, "truncated or corrupt")


def test_wrong_product(tmp_path):
    _raises(read_gmi_1c, DPR7, "is a 2A DPR product .*2ADPR.*expected GMI level 1C or 1C-R")
    _raises(read_dpr_2a, GMI, "is a 1C GMI product .*1CGMI.*expected DPR level 2A")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as h5:
        h5["x"] = np.zeros(3)
    _raises(read_dpr_2a, plain, "no FileHeader attribute")


@pytest.mark.parametrize(("reader", "source", "delete", "problem"), [
    (read_dpr_2a, DPR7, "FS/SLV/zFactorFinal", "missing dataset FS/SLV/zFactorFinal"),
    (read_dpr_2a, DPR7, "FS/CSF", "missing group FS/CSF"),
    (read_dpr_2a, DPR7, "FS/ScanTime/Hour", "missing dataset FS/ScanTime/Hour"),
    (read_dpr_2a, DPR6, "NS/SLV/zFactorCorrected", "missing dataset NS/SLV/zFactorCorrected"),
    (read_gmi_1c, GMI, "S2", "missing group S2"),
    (read_gmi_1c, GMI, "S1/Latitude", "missing dataset S1/Latitude"),
])
def test_missing_group_or_dataset(reader, source, delete, problem, tmp_path):
    path = _copy(source, tmp_path)
    with h5py.File(path, "r+") as h5:
        del h5[delete]
    _raises(reader, path, problem)


def test_bad_attributes(tmp_path):
    path = _copy(DPR7, tmp_path)
    with h5py.File(path, "r+") as h5:
        h5["FS/Latitude"].attrs["DimensionNames"] = np.bytes_("nscan")
    _raises(read_dpr_2a, path, "FS/Latitude: DimensionNames 'nscan' does not fit its 2 dimensions")
    path = _copy(GMI, tmp_path)
    with h5py.File(path, "r+") as h5:
        h5.attrs["FileHeader"] = np.bytes_(h5.attrs["FileHeader"].replace(b"GranuleNumber=000079;\n", b""))
    _raises(read_gmi_1c, path, "FileHeader has no GranuleNumber")


def test_renamed_file_reads_by_its_header(tmp_path, caplog):
    path = tmp_path / "gmi-latest.h5"
    shutil.copy(GMI, path)
    with caplog.at_level("WARNING", logger="satpy_prenet.data.gpm"):
        data = read_gmi_1c(path)
    assert data.attrs["file_name"] == GMI.name and data.attrs["source_file"] == str(path)
    assert GMI.name in caplog.text


def test_dpr_quality_flag_is_ku(dpr7, dpr6):
    """qualityFlag is read raw, Ku only for V07 (FS/FLG/qualityFlag[..., 0]), as is for V06."""
    with h5py.File(DPR7, "r") as h5:
        np.testing.assert_array_equal(dpr7["qualityFlag"].values, h5["FS/FLG/qualityFlag"][..., 0])
    with h5py.File(DPR6, "r") as h5:
        np.testing.assert_array_equal(dpr6["qualityFlag"].values, h5["NS/FLG/qualityFlag"][()])
    assert dpr7["qualityFlag"].dims == ("nscan", "nray") and "simulation" not in dpr7.attrs
