"""The ``satpy-prenet`` command and ``retrieve_file``: products, bad input, no partial output."""

from __future__ import annotations

import shutil
import struct

import h5py
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from PIL import Image

from satpy_prenet.agri_files import AGRIFileError, inspect_agri_file
from satpy_prenet.cli import main
from satpy_prenet.retrieve import retrieve_file


def _bad_copy(source, tmp_path, kind):
    """A copy of an AGRI file spoilt in one way, under a name the reader accepts unless said otherwise."""
    target = tmp_path / kind / source.name
    target.parent.mkdir()
    if kind == "zero-byte":
        target.touch()
    elif kind == "truncated":
        target.write_bytes(source.read_bytes()[: source.stat().st_size // 3])
    elif kind == "corrupt":
        data = bytearray(source.read_bytes())
        data[:64] = bytes(64)
        target.write_bytes(bytes(data))
    elif kind == "missing-channel":
        shutil.copy(source, target)
        with h5py.File(target, "r+") as h5:
            del h5["NOMChannel12"]
    elif kind == "wrong-satellite":
        target = target.with_name(source.name.replace("FY4A", "FY4C"))
        shutil.copy(source, target)
    elif kind == "mislabelled":
        shutil.copy(source, target)
        with h5py.File(target, "r+") as h5:
            h5.attrs["Satellite Name"] = np.bytes_("FY4B")
    return target


@pytest.mark.parametrize(("kind", "message"), [
    ("zero-byte", "empty"),
    ("truncated", "truncated or corrupt"),
    ("corrupt", "truncated or corrupt"),
    ("missing-channel", r"lacks channel\(s\) C12 \(10.8 um\)"),
    ("wrong-satellite", "FY4C is not supported"),
    ("mislabelled", "says it comes from 'FY4B'"),
])
def test_bad_files_give_clear_errors_and_no_output(agri_files, demo_bundle, no_weights_env, tmp_path, kind,
                                                    message):
    bad = _bad_copy(agri_files["FY-4A"], tmp_path, kind)
    out = tmp_path / "products"
    with pytest.raises(AGRIFileError, match=message) as error:
        retrieve_file(bad, out)
    assert str(bad) in str(error.value)
    assert not out.exists() or not any(out.iterdir())


def test_data_corrupt_inside_the_file_gives_a_clear_error_and_no_output(agri_files, demo_bundle, no_weights_env,
                                                                          tmp_path):
    """The file opens; a damaged compressed chunk of a channel the model needs is found before anything is made."""
    bad = tmp_path / agri_files["FY-4A"].name
    shutil.copy(agri_files["FY-4A"], bad)
    with h5py.File(bad, "r") as h5:
        chunk = h5["NOMChannel12"].id.get_chunk_info(0)
    with open(bad, "r+b") as stream:
        stream.seek(chunk.byte_offset + 16)
        stream.write(b"\xff" * 64)
    out = tmp_path / "products"
    with pytest.raises(AGRIFileError, match="reading the file failed") as error:
        retrieve_file(bad, out)
    assert str(bad) in str(error.value) and "channel C12 (10.8 um) is corrupt" in str(error.value)
    assert not out.exists() or not any(out.iterdir()), "a failed job left files behind"


def test_missing_file_is_named(tmp_path):
    with pytest.raises(AGRIFileError, match="no such file"):
        inspect_agri_file(tmp_path / "FY4A-_AGRI--_N_DISK_1047E_L1-_FDI-_MULT_NOM_20190603003000_20190603004459"
                                     "_4000M_V0001.HDF")


def test_retrieve_command_writes_products_and_goes_on_after_a_bad_file(agri_files, demo_bundle, no_weights_env,
                                                                        tmp_path):
    bad = _bad_copy(agri_files["FY-4A"], tmp_path, "truncated")
    out = tmp_path / "products"
    result = CliRunner().invoke(main, ["retrieve", str(bad), str(agri_files["FY-4B"]), "--out", str(out)])
    assert result.exit_code != 0
    assert "1 of 2 file(s) failed" in result.output
    written = sorted(path.name for path in out.iterdir())
    assert written == ["FY4B_AGRI_REGC_20260715060000_precipitation.nc",
                       "FY4B_AGRI_REGC_20260715060000_precipitation_rate.png",
                       "FY4B_AGRI_REGC_20260715060000_precipitation_rate_on_ir.png"]
    with xr.open_dataset(out / written[0]) as products:
        rate = products["precipitation_rate"]
        assert rate.attrs["units"] == "mm h-1"
        assert rate.attrs["standard_name"] == "lwe_precipitation_rate"
        assert rate.attrs["prenet_bundle_purpose"] == "demo-synthetic"
        assert np.nanmin(rate.values) >= 0
        assert products["precipitation_quality"].attrs["flag_meanings"].split()[0] == "good"
        assert "latitude" not in products.variables, "longitudes and latitudes only with --lonlats"
    image = Image.open(out / written[1])
    assert image.mode == "RGBA"
    assert image.size == (rate.sizes["x"], rate.sizes["y"])


def test_retrieve_names_a_bad_weights_option_or_output_folder_once(tmp_path):
    inputs = [str(tmp_path / name) for name in ("first.HDF", "second.HDF")]
    result = CliRunner().invoke(main, ["retrieve", *inputs, "--out", str(tmp_path / "out"),
                                       "--weights", str(tmp_path / "typo.safetensors")])
    assert result.exit_code == 1
    assert result.output.count("typo.safetensors: weights bundle given by the --weights option") == 1
    assert "first.HDF" not in result.output and not (tmp_path / "out").exists()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = CliRunner().invoke(main, ["retrieve", *inputs, "--out", str(blocker / "products")])
    assert result.exit_code == 1
    assert f"{blocker / 'products'}: cannot create the output folder" in result.output
    assert "first.HDF" not in result.output


def test_info_command(demo_bundle):
    result = CliRunner().invoke(main, ["info", str(demo_bundle)])
    assert result.exit_code == 0, result.output
    assert "demo-synthetic" in result.output
    assert "IR10.8" in result.output
    result = CliRunner().invoke(main, ["info", "--json", str(demo_bundle)])
    assert result.exit_code == 0
    assert '"purpose": "demo-synthetic"' in result.output


def test_info_command_refuses_a_bundle_with_one_byte_flipped(demo_bundle, tmp_path):
    raw = bytearray(demo_bundle.read_bytes())
    (header_length,) = struct.unpack("<Q", raw[:8])
    raw[8 + header_length + 1000] ^= 0xFF  # a byte of the tensors: the header still parses
    tampered = tmp_path / "tampered.safetensors"
    tampered.write_bytes(bytes(raw))
    result = CliRunner().invoke(main, ["info", str(tampered)])
    assert result.exit_code == 1
    assert f"{tampered}: the tensors' sha256" in result.output and "tampered" in result.output
    assert "demo-synthetic" not in result.output


def test_info_command_on_a_broken_bundle(tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 10)
    result = CliRunner().invoke(main, ["info", str(broken)])
    assert result.exit_code != 0
    assert str(broken) in result.output


def test_retrieve_names_a_coastline_folder_without_shapefiles(tmp_path):
    result = CliRunner().invoke(main, ["retrieve", str(tmp_path / "first.HDF"), "--out", str(tmp_path / "out"),
                                       "--coasts", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path}: no GSHHS_shp folder" in result.output
    assert not (tmp_path / "out").exists()
