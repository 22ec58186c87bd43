# SPDX-License-Identifier: GPL-3.0-or-later
"""trollflow2 workers of a PRE-Net job: model, input check, products computed once, pictures and file metadata.

`load_prenet_model` loads the model on its device and `check_agri_input` checks the announced files; both run
before trollflow2's ``create_scene``. The model itself runs inside the satpy composites, which
``compute_products`` computes after ``load_composites``; ``decorate_pictures`` and ``describe_sources`` prepare
the files after ``resample``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

import dask
import satpy
import torch
from dask.utils import parse_bytes
from trollflow2.plugins import AbortProcessing

from satpy_prenet.agri_files import AGRIFileError, inspect_agri_file
from satpy_prenet.bundle import BundleError, load_model_once, read_header, resolve_bundle_path
from satpy_prenet.chain import as_utc
from satpy_prenet.channels import READERS
from satpy_prenet.device import autocast_dtype, select_device
from satpy_prenet.picture_writer import PICTURE_WRITER, PICTURE_WRITER_CONFIG
from satpy_prenet.pictures import PICTURES, decoration, picture_title
from satpy_prenet.retrieve import source_attribute

LOG = logging.getLogger(__name__)

#: Where `load_prenet_model` leaves the loaded bundle in the job, for `check_agri_input`.
JOB_BUNDLE_KEY = "prenet_bundle"
#: Where `check_agri_input` leaves what it found of each input file (`satpy_prenet.agri_files.AGRIFile`).
JOB_INPUTS_KEY = "prenet_inputs"
#: The writers whose formats ``decorate_pictures`` decorates: the project's (which draws the decorations when the
#: file is written) and satpy's own ``simple_image`` (which draws them, at more memory, when the graph is built).
IMAGE_WRITERS = (PICTURE_WRITER, "simple_image")


def load_prenet_model(job, device="auto", weights=None, weights_sha256=None, torch_threads=None, dask_workers=None,
                      dask_chunk_size=None, precision="auto", satpy_cache_dir=None):
    """Choose the device, set the thread counts and satpy's cache, and load the weights bundle, once per process.

    The bundle stays loaded for the life of the process: with the launcher in threaded mode (``-t``) the
    model is loaded for the first message only. The device and bundle are handed to the composites through
    satpy's config (``prenet_device``, ``prenet_weights``), so they use the very model loaded here.

    It also puts the plugin's writers on satpy's config path (`_put_writers_on_config_path`).

    A bundle that cannot be used (missing, truncated, tampered, wrong checksum) ends the job with an error
    naming the file; the launcher goes on with the next message.

    YAML::

        - fun: !!python/name:trollflow2_plugins.prenet.load_prenet_model
          device: auto          # auto (GPU if present, else CPU), cpu, cuda or cuda:N
          weights: null         # bundle path; default SATPY_PRENET_WEIGHTS, then the embedded demo bundle
          weights_sha256: null  # refuse any bundle whose tensors have another SHA-256
          torch_threads: null   # CPU threads of the model; default: torch's (one per core)
          dask_workers: null    # threads reading, resampling and writing; default: dask's (one per core)
          dask_chunk_size: null # dask's array.chunk-size, e.g. 2MiB: the pieces satpy reads the file in
          precision: auto       # auto (mixed on a GPU; bfloat16 on a CPU that has it, else float32), float32, bfloat16
          satpy_cache_dir: null # folder of satpy's cache of the grid's longitudes, latitudes and satellite angles

    The quality flag needs the satellite zenith angle of every pixel: computed, it costs about 5 s of CPU per full
    disc; satpy's cache (``cache_lonlats``, ``cache_sensor_angles``) computes it for the first file of a grid only
    and reads it back for the next ones (0.2 s, 152 MB on disk for the 4 km disc). A folder that cannot be created
    is logged and the job goes on without the cache.

    satpy reads each band of a file in pieces of dask's ``array.chunk-size`` (128 MiB, a whole 4 km band, unless
    set); smaller pieces are calibrated (to float64) and handed on one at a time, while the model runs on blocks
    merged to at least ``satpy_prenet.inference.lazy.MIN_BLOCK_TILES`` tiles. With the product list's 2 MiB, a
    chain job's peak fell from 2675 to 2107 MiB at the same latency (docs/benchmarks.md, "Memory of a job").
    """
    try:
        chosen = select_device(device)
        autocast_dtype(chosen, precision)
        if dask_chunk_size:
            parse_bytes(dask_chunk_size)
    except ValueError as error:
        _abort(f"PRE-Net device, precision or dask_chunk_size setting: {error}")
    if torch_threads:
        torch.set_num_threads(int(torch_threads))
    if dask_workers:
        dask.config.set(num_workers=int(dask_workers))
    if dask_chunk_size:
        dask.config.set({"array.chunk-size": dask_chunk_size})
    if satpy_cache_dir:
        _use_satpy_cache(Path(satpy_cache_dir))
    _put_writers_on_config_path()
    try:
        path = resolve_bundle_path(weights)
        bundle = load_model_once(path, chosen, expected_sha256=weights_sha256)
    except BundleError as error:
        _abort(f"No PRE-Net model: {error}")
    satpy.config.set(prenet_device=str(chosen), prenet_weights=str(path), prenet_precision=precision)
    LOG.info("PRE-Net on %s with %s bundle %s; torch threads %d", chosen, bundle.header.purpose, path,
             torch.get_num_threads())
    job[JOB_BUNDLE_KEY] = bundle


def _put_writers_on_config_path() -> None:
    """Let satpy find the plugin's writers by name (``prenet_picture``) in every format of the product list.

    satpy finds the plugin's composites and enhancements through its entry points, but ``Scene.save_dataset``
    looks for writers on satpy's config path only; the plugin's YAML folder is added there once per process.
    """
    folder = str(PICTURE_WRITER_CONFIG.parents[1])
    paths = list(satpy.config.get("config_path"))
    if folder not in paths:
        satpy.config.set(config_path=[*paths, folder])


def _use_satpy_cache(folder: Path) -> None:
    """Turn on satpy's longitude/latitude and sensor-angle cache in ``folder``; without it if it cannot be made."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # satpy would fail in every job; the products can be made without the cache
        LOG.warning("satpy_cache_dir %s cannot be created (%s): the satellite angles are computed for every file",
                    folder, error.strerror or error)
        return
    satpy.config.set(cache_lonlats=True, cache_sensor_angles=True, cache_dir=str(folder))


def check_agri_input(job, platforms=tuple(READERS), sensor="agri", max_age_minutes=None, observation_types=None,
                     now=None):
    """End the job before the scene is built when its input cannot give the products.

    Checks the message (platform, sensor, age of the data) and each announced file (present, not empty,
    readable HDF5, a 4 km AGRI L1 file of the announced satellite holding every channel the model needs), then
    sets the product list's ``reader`` to the platform's satpy reader unless the product list names one, so that
    one product list serves FY-4A and FY-4B. A failed check ends the job with trollflow2's ``AbortProcessing``
    and one log line naming the file and the problem; nothing is written and the launcher goes on with the next
    message.

    YAML::

        - fun: !!python/name:trollflow2_plugins.prenet.check_agri_input
          platforms: [FY-4A, FY-4B]   # platform_name values accepted
          max_age_minutes: 180        # skip data older than this (null: no limit)
          observation_types: [DISK]   # DISK, REGC, ... (null: any)
          now: null                   # UTC time the age is measured from (null: the clock); set it to replay
                                      # archived data as if they had just arrived
    """
    mda = job["input_mda"]
    files = ", ".join(map(str, job["input_filenames"]))
    platform = mda.get("platform_name")
    if platform not in platforms:
        _abort(f"{files}: platform {platform!r} is not one of {', '.join(platforms)}")
    sensors = mda.get("sensor")
    if sensor not in (sensors if isinstance(sensors, (list, tuple, set)) else [sensors]):
        _abort(f"{files}: sensor {sensors!r} is not {sensor!r}")
    if max_age_minutes is not None:
        _check_age(files, mda.get("start_time"), float(max_age_minutes), now)
    bands = _bundle_header(job).bands
    job[JOB_INPUTS_KEY] = []
    for filename in job["input_filenames"]:
        try:
            agri = inspect_agri_file(filename, required_bands=bands)
        except AGRIFileError as error:
            _abort(str(error))
        job[JOB_INPUTS_KEY].append(agri)
        if agri.platform != platform:
            _abort(f"{filename}: the message announces {platform} but the file comes from {agri.platform}")
        if observation_types and agri.observation not in observation_types:
            _abort(f"{filename}: {agri.observation} files are not processed here "
                   f"(observation_types: {', '.join(observation_types)})")
    # One reader, the platform's: given both AGRI readers, satpy resolves wavelengths against the wrong one too.
    job["product_list"]["product_list"].setdefault("reader", READERS[platform])
    LOG.info("Input checked: %s %s, %d file(s)", platform, sensor, len(job["input_filenames"]))


def compute_products(job):
    """Compute the scene's products on the native grid, together, and keep them in memory; then the pictures.

    Left lazy, the products would run the model once per output file even though trollflow2 computes all files
    together: dask optimises each file's graph on its own, so the graphs no longer share the model's tasks
    (measured with four NetCDF files: three times the tiles, 85 s instead of 30 s on a full disc). Computed here,
    reading the file and running the model happen once per job, and resampling and writing start from memory.

    The pictures (`satpy_prenet.pictures.PICTURES`) are made afterwards, from the products computed: loaded again,
    satpy builds them on the scene's products instead of on the model. Computed with the products, their
    backgrounds (the 10.8 um image and the disc, enhanced in float64) waited in memory for the model's rate: half a
    GiB more at the job's peak on a full disc (benchmarks/job_memory.py, docs/benchmarks.md).

    Run it after ``load_composites``. A file whose data cannot be read (e.g. a damaged compressed chunk, which
    the input check cannot see) ends the job with a log line naming the file.

    YAML::

        - fun: !!python/name:trollflow2_plugins.prenet.compute_products
    """
    scene = job["scene"]
    names = [data_id["name"] for data_id in scene.keys()]
    pictures = [name for name in names if name in PICTURES]
    products = [name for name in names if name not in pictures]
    if products:
        started = time.perf_counter()
        _persist(job, products)
        LOG.info("Read the input and ran PRE-Net for %s in %.1f s", ", ".join(products),
                 time.perf_counter() - started)
    if pictures:
        started = time.perf_counter()
        for name in pictures:
            del scene[name]
        scene.load(pictures, **job["product_list"]["product_list"].get("scene_load_kwargs", {}))
        missing = [name for name in pictures if name not in scene]
        if missing:  # satpy logged why
            _abort(f"{', '.join(map(str, job['input_filenames']))}: could not make {', '.join(missing)} from the "
                   "products")
        _persist(job, pictures)
        LOG.info("Made %s in %.1f s", ", ".join(pictures), time.perf_counter() - started)


def _persist(job, names):
    """Compute the scene's ``names`` together and keep them in the scene; unreadable data end the job."""
    scene = job["scene"]
    try:
        computed = dask.persist(*(scene[name] for name in names))
    except OSError as error:  # the file's data are read here: damaged compressed chunks fail only now
        _abort(f"{', '.join(map(str, job['input_filenames']))}: reading the data failed ({error})")
    for name, array in zip(names, computed, strict=True):
        scene[name] = array


def decorate_pictures(job):
    """Give the PRE-Net pictures of the product list their title, rain-rate legend and demonstration mark.

    Every image format (`IMAGE_WRITERS`) of a product of ``satpy_prenet.pictures.PICTURES`` without a ``decorate``
    of its own gets the one ``satpy-prenet retrieve`` draws (``satpy_prenet.pictures.decoration``), sized to the
    picture of its area, with the demonstration mark when the bundle in use is a demo. Run it after ``resample`` and
    before the products are saved.

    YAML::

        - fun: !!python/name:trollflow2_plugins.prenet.decorate_pictures
    """
    demo = _bundle_header(job).is_demo
    for area, area_config in job["product_list"]["product_list"]["areas"].items():
        scene = job["resampled_scenes"].get(area)
        # Areas may share their products through a YAML alias; each gets its own copy, sized to its grid.
        area_config["products"] = {name: dict(config) for name, config in area_config["products"].items()}
        for name, config in area_config["products"].items():
            if name not in PICTURES or scene is None or name not in scene:
                continue
            decorate = decoration(picture_title(scene[name].attrs), demo=demo, width=scene[name].shape[-1])
            config["formats"] = [{"decorate": decorate, **fmt} if fmt.get("writer") in IMAGE_WRITERS else fmt
                                 for fmt in config.get("formats", [])]


def describe_sources(job):
    """Name the job's input files and bundle in the global attribute ``source`` of every CF NetCDF file.

    The product list's ``header_attrs`` serve every file, so their ``source`` can only describe the inputs in
    general; this worker replaces it with the one ``satpy-prenet retrieve`` writes (``retrieve.source_attribute``):
    the input files, the bundle's name, purpose and SHA-256, and the package version. Run it after
    `check_agri_input`, before the products are saved.

    YAML::

        - fun: !!python/name:trollflow2_plugins.prenet.describe_sources
    """
    if JOB_INPUTS_KEY not in job:  # no input check in the list: the product list's own text stays
        return
    source = source_attribute(job[JOB_INPUTS_KEY], _bundle_header(job))
    for area_config in job["product_list"]["product_list"]["areas"].values():
        for config in area_config["products"].values():
            config["formats"] = [{**fmt, "header_attrs": {**fmt.get("header_attrs", {}), "source": source}}
                                 if fmt.get("writer") == "cf" else fmt for fmt in config.get("formats", [])]


def _bundle_header(job):
    """The header of the bundle in use: the one `load_prenet_model` loaded, else the one configured."""
    if JOB_BUNDLE_KEY in job:
        return job[JOB_BUNDLE_KEY].header
    try:
        return read_header(resolve_bundle_path())
    except BundleError as error:
        _abort(f"No PRE-Net model: {error}")


def _check_age(files, start_time, max_age_minutes, now=None):
    """End the job if the data started more than ``max_age_minutes`` before ``now`` (default: the clock)."""
    if not isinstance(start_time, dt.datetime):
        _abort(f"{files}: the message has no start_time (got {start_time!r}), so the age of the data is unknown")
    start_time = as_utc(start_time)
    try:
        now = dt.datetime.now(dt.timezone.utc) if now is None else as_utc(now)
    except ValueError as error:
        _abort(f"the check step's 'now' is not a time: {error}")
    age = (now - start_time).total_seconds() / 60
    if age > max_age_minutes:
        _abort(f"{files}: data of {start_time:%Y-%m-%d %H:%M} UTC are {age:.0f} minutes old; the limit is "
               f"{max_age_minutes:g} minutes (max_age_minutes)")


def _abort(reason):
    LOG.error("PRE-Net job skipped: %s", reason)
    raise AbortProcessing(f"PRE-Net job skipped: {reason}")
