# Copyright (c) 2026 satpy-prenet developers
#
# This program is free software: you can redistribute it and/or modify it under the terms of the GNU General Public
# License as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later
# version. See the LICENSE file.
"""The weights bundle: one ``.safetensors`` file holding a trained PRE-Net and a JSON header describing it.

File layout (format version 1):

* tensors: the state dict of a `satpy_prenet.model.PrecipitationRetriever` (``classifier.*``, ``regressor.*`` and
  the normalisation buffers ``mean`` and ``std``), stored by safetensors, so loading never unpickles anything;
* safetensors metadata key ``"satpy_prenet"``: a JSON document with the format version, the model config
  (``PrecipitationRetriever.config_dict()``), the input bands (keys and wavelengths of `satpy_prenet.channels`),
  the normalisation (for information; the model applies its own buffers), the rain threshold (0.1 mm/h), the
  probability threshold, the ``purpose`` (``operational``, ``research`` or ``demo-synthetic``), the training
  provenance (dataset, stage, code version, metrics, creation time) and ``tensors_sha256``, the SHA-256 of the
  tensors in the canonical serialisation of `tensors_sha256`.

Which bundle a product uses is decided by `resolve_bundle_path`: the composite's YAML option, then satpy's config key
``prenet_weights`` (environment variable ``SATPY_PRENET_WEIGHTS``), then the demo bundle shipped in the package.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import importlib.resources
import json
import logging
import math
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from satpy_prenet import channels
from satpy_prenet.device import on_device_thread, select_device
from satpy_prenet.evaluation.metrics import RAIN_THRESHOLD

LOG = logging.getLogger(__name__)

#: safetensors metadata key holding the JSON header.
METADATA_KEY = "satpy_prenet"
#: Value of the header's ``format`` field.
FORMAT_NAME = "satpy-prenet-bundle"
#: Version of the file layout this code writes and reads.
FORMAT_VERSION = 1
#: Allowed values of the header's ``purpose``.
PURPOSES = ("operational", "research", "demo-synthetic")
#: satpy config key (and, through satpy's config, environment variable ``SATPY_PRENET_WEIGHTS``) naming a bundle.
CONFIG_KEY = "prenet_weights"
ENV_VAR = "SATPY_PRENET_WEIGHTS"
#: File name of the demo bundle shipped in ``satpy_prenet/weights/``.
DEMO_BUNDLE_NAME = "demo-small.safetensors"

_REQUIRED_KEYS = ("format_version", "purpose", "model", "bands", "rain_threshold_mm_h", "probability_threshold",
                  "provenance", "tensors_sha256")


class BundleError(ValueError):
    """A weights bundle that cannot be found, read, trusted or used; the message names the file and the problem."""


@dataclass(frozen=True)
class BundleHeader:
    """The JSON header of a weights bundle, validated.

    Attributes:
        path: File the header was read from.
        format_version: Layout version of the file.
        purpose: ``operational``, ``research`` or ``demo-synthetic``.
        model_config: ``PrecipitationRetriever.config_dict()`` of the stored model.
        bands: Band keys of `satpy_prenet.channels`, in the model's input order.
        wavelengths: Central wavelength in micrometres of each band.
        mean: Normalisation mean per band, K (information; the model holds the authoritative buffers).
        std: Normalisation standard deviation per band, K.
        rain_threshold: Rain / no-rain threshold in mm/h.
        probability_threshold: Rain probability from which the rate is reported.
        provenance: Training provenance: ``dataset``, ``stage``, ``code_version``, ``metrics``, ``created``, ...
        sha256: SHA-256 of the tensors (see `tensors_sha256`).
    """

    path: Path
    format_version: int
    purpose: str
    model_config: dict[str, Any]
    bands: tuple[str, ...]
    wavelengths: tuple[float, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    rain_threshold: float
    probability_threshold: float
    provenance: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def tile_size(self) -> int:
        """Side of the inference tiles the model was trained on, pixels."""
        return int(_find_key(self.model_config, "tile_size"))

    @property
    def code_version(self) -> str:
        """satpy-prenet version that wrote the bundle."""
        return str(self.provenance.get("code_version", "unknown"))

    @property
    def is_demo(self) -> bool:
        """Whether the model was trained on simulated data only."""
        return self.purpose == "demo-synthetic"

    def to_dict(self) -> dict[str, Any]:
        """The header as stored in the file (a JSON-serialisable copy)."""
        return json.loads(json.dumps(self.raw))

    def describe(self) -> str:
        """A few lines for people: purpose, bands, tiling, thresholds, provenance and checksum."""
        provenance = self.provenance
        metrics = ", ".join(f"{name} {value}" for name, value in (provenance.get("metrics") or {}).items()) or "none"
        lines = [
            f"bundle:      {self.path}",
            f"purpose:     {self.purpose}" + (" (trained on simulated data only)" if self.is_demo else ""),
            "bands:       " + ", ".join(f"{key} ({wavelength:g} um)"
                                        for key, wavelength in zip(self.bands, self.wavelengths, strict=True)),
            f"tile size:   {self.tile_size} pixels",
            f"thresholds:  rain >= {self.rain_threshold:g} mm/h, probability >= {self.probability_threshold:g}",
            f"dataset:     {provenance.get('dataset')}",
            f"stage:       {provenance.get('stage')}",
            f"metrics:     {metrics}",
            f"created:     {provenance.get('created')} by satpy-prenet {self.code_version}",
            f"sha256:      {self.sha256}",
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class Bundle:
    """A loaded weights bundle.

    Attributes:
        header: The validated header.
        model: The `PrecipitationRetriever` on `device`, in its inference form
            (`satpy_prenet.model.inference_form`: eval mode, batch norms folded).
        path: File the bundle was loaded from.
        device: Device the model lives on.
    """

    header: BundleHeader
    model: torch.nn.Module
    path: Path
    device: torch.device


def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    r"""SHA-256 of a set of named tensors, independent of how the file orders or aligns them.

    The canonical serialisation hashes, for each name in sorted order, the line ``name\ndtype\nshape\nnbytes\n``
    (dtype as torch prints it, e.g. ``torch.float32``; shape as comma-separated sizes) followed by the tensor's raw
    little-endian bytes in C order.
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        raw = tensor.reshape(-1).view(torch.uint8).numpy()
        shape = ",".join(str(size) for size in tensor.shape)
        digest.update(f"{name}\n{tensor.dtype}\n{shape}\n{raw.nbytes}\n".encode())
        digest.update(memoryview(raw))
    return digest.hexdigest()


def save_bundle(path: str | os.PathLike, retriever: torch.nn.Module, *, purpose: str,
                provenance: Mapping[str, Any] | None = None, half_precision: bool = False) -> Path:
    """Write ``retriever`` and its header to one safetensors file, atomically.

    The file is written under a temporary name in the target folder and renamed into place, so readers never see a
    partial bundle.

    Args:
        path: Target file (conventionally ``*.safetensors``); parent folders are created.
        retriever: A `PrecipitationRetriever` (LoRA adapters already merged).
        purpose: ``operational``, ``research`` or ``demo-synthetic``.
        provenance: Training provenance; ``dataset``, ``stage``, ``metrics`` are recorded as given,
            ``code_version`` and ``created`` default to this package's version and the current UTC time.
            Must be JSON-serialisable.
        half_precision: Store the network weights as float16 (half the file size; loading casts them back to
            float32). The normalisation buffers stay float32.

    Returns:
        The path written.

    Raises:
        BundleError: If ``purpose`` is unknown or ``provenance`` cannot be stored as JSON.
    """
    path = Path(path)
    if purpose not in PURPOSES:
        raise BundleError(f"{path}: unknown purpose {purpose!r}; choose one of {', '.join(PURPOSES)}")
    tensors = {name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in retriever.state_dict().items()}
    if half_precision:
        tensors = {name: tensor.half() if tensor.is_floating_point() and name not in ("mean", "std") else tensor
                   for name, tensor in tensors.items()}
    config = retriever.config_dict()
    band_keys = [str(key) for key in _find_key(config, "bands")]
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "purpose": purpose,
        "model": config,
        "bands": [{"key": band.key, "wavelength_um": band.wavelength} for band in channels.bands(band_keys)],
        "normalisation": {
            "mean": [float(value) for value in tensors["mean"].reshape(-1)],
            "std": [float(value) for value in tensors["std"].reshape(-1)],
            "units": "K",
            "note": "applied inside the model from its mean and std tensors; listed here for information",
        },
        "rain_threshold_mm_h": RAIN_THRESHOLD,
        "probability_threshold": float(_find_key(config, "probability_threshold")),
        "provenance": _provenance(provenance),
        "tensors_sha256": tensors_sha256(tensors),
    }
    try:
        text = json.dumps(header, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise BundleError(f"{path}: the header cannot be stored as JSON ({error})") from error
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    os.chmod(tmp_name, 0o644)  # mkstemp makes the file private; a bundle is for every user of the machine
    try:
        save_file(tensors, tmp_name, metadata={METADATA_KEY: text})
        with open(tmp_name, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    LOG.info("Wrote %s bundle %s (sha256 %s)", purpose, path, header["tensors_sha256"])
    return path


def read_header(path: str | os.PathLike) -> BundleHeader:
    """Read and validate the header of a bundle without loading its tensors.

    Raises:
        BundleError: If the file is missing, empty, not a safetensors file, truncated, or its header is missing,
            malformed, of an unknown format version or purpose.
    """
    path = Path(path)
    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as stream:
            metadata = stream.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise BundleError(f"{path}: not a readable safetensors file, truncated or corrupt ({error})") from error
    if METADATA_KEY not in metadata:
        raise BundleError(f"{path}: no {METADATA_KEY!r} header in the safetensors metadata; not a satpy-prenet bundle")
    try:
        data = json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError as error:
        raise BundleError(f"{path}: malformed header, not valid JSON ({error})") from error
    return _parse_header(path, data)


def read_tensors(path: str | os.PathLike, header: BundleHeader) -> dict[str, torch.Tensor]:
    """Read a bundle's tensors (on the CPU) and check them against the SHA-256 its header records.

    Raises:
        BundleError: If the tensors cannot be read, or their SHA-256 is not the header's (a modified or corrupted
            file).
    """
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as error:
        raise BundleError(f"{path}: cannot read the tensors, truncated or corrupt ({error})") from error
    digest = tensors_sha256(tensors)
    if digest != header.sha256:
        raise BundleError(f"{path}: the tensors' sha256 {digest} differs from the header's {header.sha256}; "
                          "the file was modified (tampered) or corrupted")
    return tensors


def load_bundle(path: str | os.PathLike, device: str | torch.device = "cpu", *,
                expected_sha256: str | None = None) -> Bundle:
    """Load a bundle: validate the header, verify the tensors' SHA-256 and rebuild the model for inference.

    Only safetensors is used to read the file; nothing is unpickled. The SHA-256 in the header detects corrupted
    or edited tensors; to make sure a file is *the* expected model, pin its SHA-256 with ``expected_sha256``.

    Args:
        path: The bundle file.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or a `torch.device` (see
            `satpy_prenet.device.select_device`).
        expected_sha256: If given, the tensors' SHA-256 the bundle must have.

    Raises:
        BundleError: If the file cannot be read or trusted (see `read_header`), its tensors differ from the
            header's (or the expected) SHA-256, or they do not match the model the header describes.
    """
    device = device if isinstance(device, torch.device) else select_device(device)
    # On the device's thread, so that the process's only OpenMP team is the one its forward passes use.
    return on_device_thread(device, _load_bundle, Path(path), device, expected_sha256)


def _load_bundle(path: Path, device: torch.device, expected_sha256: str | None) -> Bundle:
    from satpy_prenet.model import PrecipitationRetriever, inference_form

    header = read_header(path)
    if expected_sha256 is not None and expected_sha256.lower() != header.sha256:
        raise BundleError(f"{path}: sha256 {header.sha256} is not the expected {expected_sha256.lower()}")
    tensors = read_tensors(path, header)
    try:
        model = PrecipitationRetriever.from_config(header.model_config)
    except (TypeError, ValueError, KeyError) as error:
        raise BundleError(f"{path}: the header's model config cannot build a model ({error})") from error
    _check_tensors(path, model, tensors)
    model.load_state_dict(tensors, strict=True)
    _check_normalisation(path, header, model)
    return Bundle(header=header, model=inference_form(model, device), path=path, device=device)


def check_bands(header: BundleHeader, available: Iterable[str], *, source: str = "the scene") -> None:
    """Check that ``source`` provides every band the bundle's model takes.

    Args:
        header: Header of the bundle.
        available: Band keys (`satpy_prenet.channels`) that the source can provide.
        source: What provides the bands, for the message (e.g. ``"FY-4B AGRI data of 2024-06-01 06:00"``).

    Raises:
        BundleError: Naming the missing bands and their wavelengths.
    """
    available = set(available)
    pairs = zip(header.bands, header.wavelengths, strict=True)
    missing = [(key, wavelength) for key, wavelength in pairs if key not in available]
    if missing:
        listed = ", ".join(f"{key} ({wavelength:g} um)" for key, wavelength in missing)
        raise BundleError(f"{header.path}: the model needs band(s) {listed}, which {source} does not provide")


def embedded_bundle_path() -> Path:
    """Location of the demo bundle shipped inside the package (it may be absent from a source checkout)."""
    return Path(str(importlib.resources.files("satpy_prenet").joinpath("weights", DEMO_BUNDLE_NAME)))


def resolve_bundle_path(option: str | os.PathLike | None = None, *,
                        option_name: str = "composite option 'weights'") -> Path:
    """Decide which bundle to use.

    Order: ``option`` (the composite's YAML option ``weights``, or what ``option_name`` says), satpy's config key
    ``prenet_weights`` (set in a satpy config file or with ``satpy.config.set``), the environment variable
    ``SATPY_PRENET_WEIGHTS`` (which satpy also copies into that key), then the embedded demo bundle. Messages name
    the setting the path came from.

    Raises:
        BundleError: If the chosen path does not exist or is not a file, or nothing is configured and the demo
            bundle is absent.
    """
    import satpy

    from_environment = os.environ.get(ENV_VAR)
    configured = satpy.config.get(CONFIG_KEY, None)
    candidates = (
        (option_name, option),
        (f"satpy config {CONFIG_KEY!r}", configured if str(configured) != from_environment else None),
        (f"environment variable {ENV_VAR}", from_environment),
    )
    for source, value in candidates:
        if value not in (None, ""):
            path = Path(value).expanduser()
            if path.is_dir():
                raise BundleError(f"{path}: the {source} names a folder; give a weights bundle file (.safetensors)")
            if not path.is_file():
                raise BundleError(f"{path}: weights bundle given by the {source} does not exist")
            _log_choice(path, source)
            return path
    path = embedded_bundle_path()
    if not path.is_file():
        raise BundleError(f"{path}: no weights bundle configured (composite option 'weights', satpy config "
                          f"{CONFIG_KEY!r} or {ENV_VAR}) and the embedded demo bundle is missing from this install")
    _log_choice(path, "embedded demo bundle")
    return path


_CACHE_SIZE = 4
_cache: OrderedDict[tuple, Bundle] = OrderedDict()
_cache_lock = threading.Lock()
_logged_choices: set[tuple[str, str]] = set()


def load_model_once(path: str | os.PathLike, device: str | torch.device = "cpu", *,
                    expected_sha256: str | None = None) -> Bundle:
    """Load a bundle once per process and return the cached one afterwards.

    The cache key is the resolved path, the file's modification time and size, and the device, so a bundle
    replaced on disk is loaded again. Thread-safe; holds at most a few bundles. ``expected_sha256`` as in
    `load_bundle`.
    """
    path = Path(path).expanduser()
    try:
        stat = path.stat()
        path = path.resolve()
    except OSError as error:
        raise BundleError(f"{path}: weights bundle not found ({error.strerror})") from error
    device = device if isinstance(device, torch.device) else select_device(device)
    key = (str(path), stat.st_mtime_ns, stat.st_size, str(device))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            bundle = _cache[key]
            if expected_sha256 is not None and expected_sha256.lower() != bundle.header.sha256:
                raise BundleError(f"{path}: sha256 {bundle.header.sha256} is not the expected "
                                  f"{expected_sha256.lower()}")
            return bundle
        bundle = load_bundle(path, device, expected_sha256=expected_sha256)
        LOG.info("Loaded %s PRE-Net bundle %s (sha256 %s) on %s", bundle.header.purpose, path,
                 bundle.header.sha256[:12], device)
        _cache[key] = bundle
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return bundle


def clear_model_cache() -> None:
    """Forget the bundles loaded by `load_model_once`."""
    with _cache_lock:
        _cache.clear()


def _log_choice(path: Path, source: str) -> None:
    """Log the bundle choice at INFO the first time, at DEBUG afterwards (composites resolve once per product)."""
    level = logging.DEBUG if (str(path), source) in _logged_choices else logging.INFO
    _logged_choices.add((str(path), source))
    LOG.log(level, "Using PRE-Net weights bundle %s (from the %s)", path, source)


def _check_file(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as error:
        raise BundleError(f"{path}: weights bundle not found ({error.strerror})") from error
    if not path.is_file():
        raise BundleError(f"{path}: not a file")
    if size == 0:
        raise BundleError(f"{path}: empty file (0 bytes), not a weights bundle")


def _find_key(config: Mapping[str, Any], key: str) -> Any:
    """Value of ``key`` in a config dict, looked up at the top level, then one level down (e.g. the student)."""
    if key in config:
        return config[key]
    for value in config.values():
        if isinstance(value, Mapping) and key in value:
            return value[key]
    raise KeyError(f"model config has no {key!r}")


def _provenance(provenance: Mapping[str, Any] | None) -> dict[str, Any]:
    record = {"dataset": None, "stage": None, "code_version": _code_version(), "metrics": {},
              "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    record.update(provenance or {})
    return record


def _code_version() -> str:
    try:
        return importlib.metadata.version("satpy-prenet")
    except importlib.metadata.PackageNotFoundError:
        import satpy_prenet

        return str(getattr(satpy_prenet, "__version__", "unknown"))


def _parse_header(path: Path, data: Any) -> BundleHeader:
    """Validate the decoded header JSON and build a `BundleHeader`."""
    if not isinstance(data, dict):
        raise BundleError(f"{path}: malformed header, expected a JSON object, got {type(data).__name__}")
    missing = [key for key in _REQUIRED_KEYS if key not in data]
    if missing:
        raise BundleError(f"{path}: malformed header, missing {', '.join(missing)}")
    version = data["format_version"]
    if data.get("format", FORMAT_NAME) != FORMAT_NAME or not isinstance(version, int):
        raise BundleError(f"{path}: malformed header, not a {FORMAT_NAME} (format {data.get('format')!r}, "
                          f"version {version!r})")
    if version != FORMAT_VERSION:
        raise BundleError(f"{path}: unknown bundle format version {version}; this satpy-prenet reads version "
                          f"{FORMAT_VERSION} (a newer satpy-prenet may read it)")
    if data["purpose"] not in PURPOSES:
        raise BundleError(f"{path}: unknown purpose {data['purpose']!r}; expected one of {', '.join(PURPOSES)}")
    try:
        return _build_header(path, data)
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise BundleError(f"{path}: malformed header ({type(error).__name__}: {error})") from error


def _build_header(path: Path, data: dict[str, Any]) -> BundleHeader:
    config = data["model"]
    if not isinstance(config, dict):
        raise TypeError("'model' must be a JSON object")
    keys = tuple(str(entry["key"]) for entry in data["bands"])
    wavelengths = tuple(float(entry["wavelength_um"]) for entry in data["bands"])
    known = channels.bands(keys)
    if any(not math.isclose(band.wavelength, wavelength) for band, wavelength in zip(known, wavelengths, strict=True)):
        raise ValueError(f"band wavelengths {wavelengths} disagree with the band table "
                         f"{tuple(band.wavelength for band in known)}")
    if tuple(_find_key(config, "bands")) != keys:
        raise ValueError(f"bands {list(keys)} differ from the model config's {list(_find_key(config, 'bands'))}")
    if float(data["probability_threshold"]) != float(_find_key(config, "probability_threshold")):
        raise ValueError(f"probability threshold {data['probability_threshold']} differs from the model config's "
                         f"{_find_key(config, 'probability_threshold')}")
    normalisation = data.get("normalisation", {})
    mean = tuple(float(value) for value in normalisation.get("mean", ()))
    std = tuple(float(value) for value in normalisation.get("std", ()))
    if (mean or std) and not len(mean) == len(std) == len(keys):
        raise ValueError(f"normalisation has {len(mean)} means and {len(std)} stds for {len(keys)} bands")
    sha256 = data["tensors_sha256"]
    if not isinstance(sha256, str) or len(sha256) != 64 or any(char not in "0123456789abcdef" for char in sha256):
        raise ValueError(f"tensors_sha256 {sha256!r} is not a hex SHA-256")
    provenance = data["provenance"]
    if not isinstance(provenance, dict):
        raise TypeError("'provenance' must be a JSON object")
    header = BundleHeader(
        path=path, format_version=data["format_version"], purpose=data["purpose"], model_config=config,
        bands=keys, wavelengths=wavelengths, mean=mean, std=std,
        rain_threshold=float(data["rain_threshold_mm_h"]),
        probability_threshold=float(data["probability_threshold"]), provenance=provenance, sha256=sha256,
        raw=data,
    )
    if header.tile_size <= 0:
        raise ValueError(f"tile_size {header.tile_size} must be positive")
    return header


def _check_tensors(path: Path, model: torch.nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Compare the stored tensors with the ones the model built from the header expects."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(name for name in set(expected) & set(tensors) if expected[name].shape != tensors[name].shape)
    problems = []
    if missing:
        problems.append(f"missing tensor(s) {_shorten(missing)}")
    if unexpected:
        problems.append(f"unexpected tensor(s) {_shorten(unexpected)}")
    if wrong:
        problems.append("tensor(s) of the wrong shape " + _shorten(
            [f"{name} {tuple(tensors[name].shape)} != {tuple(expected[name].shape)}" for name in wrong]))
    if problems:
        raise BundleError(f"{path}: the tensors do not match the model config: {'; '.join(problems)}")


def _check_normalisation(path: Path, header: BundleHeader, model: torch.nn.Module) -> None:
    """The header's informative mean/std must agree with the model's buffers."""
    for name, listed in (("mean", header.mean), ("std", header.std)):
        if not listed:
            continue
        stored = getattr(model, name).detach().reshape(-1).tolist()
        if len(stored) != len(listed) or not all(
                math.isclose(a, b, rel_tol=1e-6) for a, b in zip(stored, listed, strict=True)):
            raise BundleError(f"{path}: the header's normalisation {name} {list(listed)} differs from the "
                              f"model's {stored}")


def _shorten(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
