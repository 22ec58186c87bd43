"""The weights bundle: round trip, integrity checks, band checks and resolution order, with real small models."""

from __future__ import annotations

import json
import logging
import os
import pickle
import struct
from dataclasses import replace
from pathlib import Path

import pytest
import satpy
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from satpy_prenet import bundle as bundle_module
from satpy_prenet import channels
from satpy_prenet.bundle import (
    METADATA_KEY,
    BundleError,
    check_bands,
    load_bundle,
    load_model_once,
    read_header,
    resolve_bundle_path,
    save_bundle,
    tensors_sha256,
)
from satpy_prenet.model import PrecipitationRetriever, preset

BANDS = channels.PAPER_BANDS


def _retriever(seed: int = 0) -> PrecipitationRetriever:
    torch.manual_seed(seed)
    student = replace(preset("small", in_channels=len(BANDS), out_channels=1), tile_size=64)
    mean = [float(value) for value in torch.linspace(220.0, 280.0, len(BANDS))]
    std = [float(value) for value in torch.linspace(5.0, 25.0, len(BANDS))]
    return PrecipitationRetriever(student=student, bands=BANDS, probability_threshold=0.3, mean=mean, std=std).eval()


@pytest.fixture(scope="module")
def retriever() -> PrecipitationRetriever:
    return _retriever()


@pytest.fixture
def bundle_path(tmp_path, retriever) -> Path:
    provenance = {"dataset": "synthetic-v1", "stage": "adapt", "metrics": {"csi": 0.25}}
    return save_bundle(tmp_path / "model.safetensors", retriever, purpose="research", provenance=provenance)


def _rewrite(path: Path, tensors: dict[str, torch.Tensor] | None = None, header: dict | str | None = None) -> None:
    """Rewrite a bundle with other tensors and/or another header text, as a tamperer would."""
    with safe_open(str(path), framework="pt") as stream:
        metadata = dict(stream.metadata())
    tensors = load_file(str(path)) if tensors is None else tensors
    if header is not None:
        metadata[METADATA_KEY] = header if isinstance(header, str) else json.dumps(header)
    save_file(tensors, str(path), metadata=metadata)


def _header_json(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as stream:
        return json.loads(stream.metadata()[METADATA_KEY])


def test_round_trip_gives_the_same_outputs(bundle_path, retriever):
    """The loaded model (batch norms folded) gives the saved retriever's outputs to float32 rounding."""
    loaded = load_bundle(bundle_path)
    assert not loaded.model.training
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in loaded.model.modules())
    assert loaded.path == bundle_path and loaded.device == torch.device("cpu")
    bt = 250.0 + 20.0 * torch.randn(2, len(BANDS), 64, 64)
    bt[0, :, :8, :8] = float("nan")
    with torch.inference_mode():
        expected, got = retriever(bt), loaded.model(bt)
    for want, have in zip(expected, got, strict=True):
        torch.testing.assert_close(have, want, rtol=1e-4, atol=1e-5)


def test_header_records_what_the_product_needs(bundle_path, retriever):
    header = read_header(bundle_path)
    assert header.format_version == 1
    assert header.purpose == "research" and not header.is_demo
    assert header.bands == BANDS
    assert header.wavelengths == tuple(band.wavelength for band in channels.bands(BANDS))
    assert header.tile_size == 64
    assert header.rain_threshold == 0.1
    assert header.probability_threshold == pytest.approx(0.3)
    assert header.mean == pytest.approx(retriever.mean.tolist())
    assert header.std == pytest.approx(retriever.std.tolist())
    assert header.model_config == retriever.config_dict()
    assert header.provenance["dataset"] == "synthetic-v1" and header.provenance["stage"] == "adapt"
    assert header.provenance["metrics"] == {"csi": 0.25}
    assert header.code_version != "unknown" and header.provenance["created"].endswith("+00:00")
    assert header.sha256 == tensors_sha256(load_file(str(bundle_path)))
    assert header.to_dict() == _header_json(bundle_path)
    text = header.describe()
    assert "research" in text and "IR10.8 (10.8 um)" in text and "synthetic-v1" in text and header.sha256 in text


def test_save_is_atomic_and_validates_purpose(tmp_path, retriever):
    with pytest.raises(BundleError, match="purpose"):
        save_bundle(tmp_path / "x.safetensors", retriever, purpose="production", provenance={})
    save_bundle(tmp_path / "sub" / "x.safetensors", retriever, purpose="demo-synthetic", provenance={})
    assert sorted(path.name for path in (tmp_path / "sub").iterdir()) == ["x.safetensors"]
    assert read_header(tmp_path / "sub" / "x.safetensors").is_demo


def test_sha256_is_canonical():
    tensors = {"b": torch.arange(6, dtype=torch.float32).reshape(2, 3), "a": torch.tensor(1.5)}
    reordered = {"a": torch.tensor(1.5), "b": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    assert tensors_sha256(tensors) == tensors_sha256(reordered)
    assert tensors_sha256(tensors) != tensors_sha256({**tensors, "b": tensors["b"].reshape(3, 2)})
    assert tensors_sha256(tensors) != tensors_sha256({**tensors, "a": torch.tensor(1.5, dtype=torch.float64)})


def test_tampered_tensor_bytes_are_refused(bundle_path):
    raw = bytearray(bundle_path.read_bytes())
    (header_length,) = struct.unpack("<Q", raw[:8])
    raw[8 + header_length + 1000] ^= 0xFF
    bundle_path.write_bytes(bytes(raw))
    read_header(bundle_path)  # the header alone is intact
    with pytest.raises(BundleError, match="sha256.*tampered") as error:
        load_bundle(bundle_path)
    assert str(bundle_path) in str(error.value)


@pytest.mark.parametrize(("change", "message"), [
    (lambda header: "{not json", "not valid JSON"),
    (lambda header: "[1, 2]", "expected a JSON object"),
    (lambda header: {**header, "purpose": "weather"}, "unknown purpose 'weather'"),
    (lambda header: {**header, "format_version": 99}, "unknown bundle format version 99"),
    (lambda header: {key: value for key, value in header.items() if key != "tensors_sha256"}, "missing tensors_sha256"),
    (lambda header: {**header, "bands": [{"key": "IR10.8", "wavelength_um": 11.2}]}, "malformed header"),
    (lambda header: {**header, "bands": header["bands"][:-1]}, "differ from the model config"),
    (lambda header: {**header, "tensors_sha256": "abc"}, "not a hex SHA-256"),
    (lambda header: {**header, "probability_threshold": 0.9}, "probability threshold 0.9 differs"),
])
def test_tampered_header_is_refused(bundle_path, change, message):
    _rewrite(bundle_path, header=change(_header_json(bundle_path)))
    with pytest.raises(BundleError, match=message) as error:
        load_bundle(bundle_path)
    assert str(bundle_path) in str(error.value)


def test_expected_sha256_pins_the_model(bundle_path):
    sha256 = read_header(bundle_path).sha256
    assert load_bundle(bundle_path, expected_sha256=sha256.upper()).header.sha256 == sha256
    with pytest.raises(BundleError, match="is not the expected 0000"):
        load_bundle(bundle_path, expected_sha256="0" * 64)


def test_header_normalisation_must_match_the_model(bundle_path):
    header = _header_json(bundle_path)
    header["normalisation"]["mean"][0] += 1.0
    _rewrite(bundle_path, header=header)
    with pytest.raises(BundleError, match="normalisation mean"):
        load_bundle(bundle_path)


def test_file_without_header_is_not_a_bundle(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path))
    with pytest.raises(BundleError, match="not a satpy-prenet bundle"):
        read_header(path)


@pytest.mark.parametrize("size", [0, 5, 100, "half"])
def test_truncated_and_empty_files_are_named(bundle_path, size):
    raw = bundle_path.read_bytes()
    bundle_path.write_bytes(raw[:len(raw) // 2 if size == "half" else size])
    with pytest.raises(BundleError) as error:
        load_bundle(bundle_path)
    assert str(bundle_path) in str(error.value)
    if size == 0:
        assert "empty" in str(error.value)


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere.safetensors"
    with pytest.raises(BundleError, match="not found") as error:
        load_bundle(path)
    assert str(path) in str(error.value)


def test_tensors_must_match_the_config(bundle_path):
    tensors = load_file(str(bundle_path))
    header = _header_json(bundle_path)
    name = sorted(key for key in tensors if key.startswith("regressor."))[0]
    del tensors[name]
    tensors["extra.weight"] = torch.zeros(2)
    header["tensors_sha256"] = tensors_sha256(tensors)  # a consistent but wrong file
    _rewrite(bundle_path, tensors=tensors, header=header)
    with pytest.raises(BundleError, match=f"missing tensor.*{name}.*unexpected tensor.*extra.weight"):
        load_bundle(bundle_path)


def test_wrong_shapes_are_reported(bundle_path):
    tensors = load_file(str(bundle_path))
    header = _header_json(bundle_path)
    tensors["mean"] = torch.zeros(3)
    header["tensors_sha256"] = tensors_sha256(tensors)
    _rewrite(bundle_path, tensors=tensors, header=header)
    with pytest.raises(BundleError, match="wrong shape mean"):
        load_bundle(bundle_path)


def test_loading_never_unpickles(bundle_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a bundle must load without pickle")

    for owner, name in ((torch, "load"), (pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")):
        monkeypatch.setattr(owner, name, forbidden)
    assert load_bundle(bundle_path).header.sha256


def test_missing_bands_are_named_with_wavelengths(bundle_path):
    header = read_header(bundle_path)
    check_bands(header, list(BANDS) + ["IR10.8"])
    with pytest.raises(BundleError, match=r"IR3\.72H \(3\.72 um\), IR3\.72L \(3\.72 um\).*FY-4B file") as error:
        check_bands(header, channels.DAY_NIGHT_BANDS, source="FY-4B file")
    assert "IR10.8" not in str(error.value)


@pytest.fixture
def choices(tmp_path, retriever, monkeypatch):
    """Three bundles (option, environment, embedded), no satpy config value, and a clean cache."""
    paths = {name: save_bundle(tmp_path / f"{name}.safetensors", retriever, purpose="research", provenance={})
             for name in ("option", "environment", "embedded", "config")}
    monkeypatch.setattr(bundle_module, "embedded_bundle_path", lambda: paths["embedded"])
    monkeypatch.delenv("SATPY_PRENET_WEIGHTS", raising=False)
    with satpy.config.set(prenet_weights=None):
        yield paths


def test_resolution_order(choices, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="satpy_prenet.bundle")
    assert resolve_bundle_path() == choices["embedded"]
    assert "embedded demo bundle" in caplog.text
    monkeypatch.setenv("SATPY_PRENET_WEIGHTS", str(choices["environment"]))
    assert resolve_bundle_path() == choices["environment"]
    assert "SATPY_PRENET_WEIGHTS" in caplog.text
    assert resolve_bundle_path(str(choices["option"])) == choices["option"]
    assert resolve_bundle_path(choices["option"]) == choices["option"]
    assert "composite option" in caplog.text
    with satpy.config.set(prenet_weights=str(choices["config"])):
        assert resolve_bundle_path() == choices["config"]
        assert resolve_bundle_path(choices["option"]) == choices["option"]


def test_resolution_errors(choices, monkeypatch, tmp_path):
    with pytest.raises(BundleError, match="composite option"):
        resolve_bundle_path(tmp_path / "typo.safetensors")
    with pytest.raises(BundleError, match="typo.safetensors: weights bundle given by the --weights option"):
        resolve_bundle_path(tmp_path / "typo.safetensors", option_name="--weights option")
    with pytest.raises(BundleError, match="names a folder"):
        resolve_bundle_path(tmp_path)
    gone = str(tmp_path / "gone.safetensors")
    monkeypatch.setenv("SATPY_PRENET_WEIGHTS", gone)
    with pytest.raises(BundleError, match="gone.safetensors.*SATPY_PRENET_WEIGHTS"):
        resolve_bundle_path()
    with satpy.config.set(prenet_weights=gone), pytest.raises(BundleError, match="SATPY_PRENET_WEIGHTS") as error:
        resolve_bundle_path()  # satpy copies the variable into its config: still named as the variable
    assert "satpy config" not in str(error.value)
    monkeypatch.delenv("SATPY_PRENET_WEIGHTS")
    monkeypatch.setattr(bundle_module, "embedded_bundle_path", lambda: tmp_path / "demo-small.safetensors")
    with pytest.raises(BundleError, match="embedded demo bundle is missing"):
        resolve_bundle_path()


def test_embedded_path_points_into_the_package():
    path = bundle_module.embedded_bundle_path()
    assert path.name == "demo-small.safetensors" and path.parent.name == "weights"
    assert path.parent.parent == Path(bundle_module.__file__).parent


def test_load_model_once_caches_per_file_version(bundle_path, retriever):
    bundle_module.clear_model_cache()
    first = load_model_once(bundle_path)
    assert load_model_once(str(bundle_path), "cpu") is first
    with pytest.raises(BundleError, match="not the expected"):
        load_model_once(bundle_path, expected_sha256="f" * 64)
    save_bundle(bundle_path, _retriever(seed=1), purpose="operational", provenance={})
    stat = bundle_path.stat()
    os.utime(bundle_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = load_model_once(bundle_path)
    assert second is not first and second.header.purpose == "operational"
    with pytest.raises(BundleError, match="not found"):
        load_model_once(bundle_path.with_name("missing.safetensors"))
    bundle_module.clear_model_cache()


def test_half_precision_bundle_is_half_the_size_and_loads_as_float32(tmp_path):
    retriever = _retriever()
    full = save_bundle(tmp_path / "full.safetensors", retriever, purpose="research")
    half = save_bundle(tmp_path / "half.safetensors", retriever, purpose="research", half_precision=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    model = load_bundle(half).model
    assert all(tensor.dtype == torch.float32 for tensor in model.state_dict().values() if tensor.is_floating_point())
    bt = torch.full((1, len(BANDS), 64, 64), 250.0)
    bt[..., :32] = 220.0
    with torch.inference_mode():
        probability_full, _ = load_bundle(full).model(bt)
        probability_half, _ = model(bt)
    torch.testing.assert_close(probability_half, probability_full, atol=2e-3, rtol=0)


def test_embedded_bundle_was_made_by_the_training_pipeline(demo_bundle):
    header = read_header(demo_bundle)
    pipeline = header.provenance["pipeline"]
    assert pipeline["command"] == "satpy-prenet-train all" and pipeline["simulate"] is True
    assert pipeline["config_file"] == "etc/training/small.yaml"
    assert header.provenance["stage"].startswith("PRE-Net: teacher, Swath-Distilling")
    assert header.purpose == "demo-synthetic"
