# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the precipitation products of one AGRI L1 file with satpy, without trollflow2."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import dask
import satpy
from dask.diagnostics import ProgressBar
from satpy import Scene
from satpy.cf.coords import EPOCH
from satpy.writers.core.compute import compute_writer_results

from satpy_prenet import __version__
from satpy_prenet.agri_files import AGRIFile, AGRIFileError, inspect_agri_file
from satpy_prenet.bundle import BundleHeader, read_header, resolve_bundle_path
from satpy_prenet.picture_writer import PICTURE_WRITER, PICTURE_WRITER_CONFIG
from satpy_prenet.pictures import PICTURES, PNG_COMPRESS_LEVEL, coastline_overlay, decoration, picture_title

LOG = logging.getLogger(__name__)

#: dask's ``array.chunk-size`` while the scene is loaded: satpy reads each band in pieces of this size, calibrated
#: (to float64) and handed on one at a time, instead of whole bands; the model's blocks are merged to at least
#: `satpy_prenet.inference.lazy.MIN_BLOCK_TILES` tiles. The product list sets the same (``dask_chunk_size``).
DASK_CHUNK_SIZE = "2MiB"

PRODUCTS = ("precipitation_rate", "precipitation_probability", "precipitation_flag", "precipitation_quality")
#: NetCDF encoding of each product variable (dimensions time, y, x): zlib level 4 and chunks of 256 x 256 pixels,
#: so that reading a region decompresses only the chunks it touches (11 x 11 chunks on the 2748 x 2748 full disc).
#: etc/trollflow2/agri_precipitation.yaml repeats it; a test checks that the two agree.
PRODUCT_ENCODING = {"zlib": True, "complevel": 4, "chunksizes": [1, 256, 256]}
#: Value of the global attribute ``institution`` unless the operator gives another.
INSTITUTION = "satpy-prenet"
#: Global attribute ``references``: the PRE-Net paper and this project.
REFERENCES = ("Wang Z., Ying K., Xu B., Wang C., Bai C. (2025): From Swath to Full-Disc: Advancing Precipitation "
              "Retrieval with Multimodal Knowledge Expansion. KDD 2025, https://doi.org/10.48550/arXiv.2506.07050; "
              "satpy-prenet, the satpy plugin and trollflow2 chain that made this file (docs/products.md)")
#: Name prefix of the staging folders `retrieve_file` makes in the output folder; host and process id follow.
STAGING_PREFIX = ".satpy-prenet-staging."
#: Seconds without change after which a staging folder of a dead process counts as left behind.
STALE_AFTER_S = 3600


@dataclass(frozen=True)
class Products:
    """Files written for one AGRI file: the four products in CF NetCDF, and the two `PICTURES` as PNG."""

    netcdf: Path
    image: Path
    quicklook: Path

    def paths(self) -> tuple[Path, ...]:
        """All files, in the order of the fields."""
        return tuple(getattr(self, name) for name in self.__dataclass_fields__)


def make_output_folder(out_dir: str | Path) -> Path:
    """Create the products' folder if missing.

    Raises:
        OSError: Naming the folder, if it cannot be created or is not a folder.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"{out_dir}: cannot create the output folder ({error.strerror or error})") from error
    return out_dir


def retrieve_file(path: str | Path, out_dir: str | Path, *, weights: str | Path | None = None,
                  device: str | None = None, progress: bool = False, lonlats: bool = False,
                  institution: str | None = None, coasts: str | Path | None = None,
                  precision: str | None = None) -> Products:
    """Compute the PRE-Net products of AGRI file ``path`` and write them to ``out_dir``.

    The files appear under their final names only when complete: they are written in a staging folder
    beside them and moved into place, so a failure leaves no partial product. Staging folders that killed
    jobs left in ``out_dir`` are removed first (`remove_stale_staging`).

    Args:
        path: FY-4A or FY-4B AGRI L1 4 km full-disc (or regional) HDF file.
        out_dir: Folder of the products (created if missing).
        weights: Weights bundle; default: satpy config ``prenet_weights``, then the embedded demo bundle.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; default: the composite's option (``auto``).
        progress: Show a progress bar while computing.
        lonlats: Also write the 2-D longitudes and latitudes of the pixels into the NetCDF file.
        institution: Global attribute ``institution`` of the NetCDF file; default `INSTITUTION`.
        precision: ``auto``, ``float32`` or ``bfloat16`` (`satpy_prenet.device.PRECISIONS`); default: the
            composite's option (``auto``).
        coasts: Folder of the GSHHG shapefiles (holding ``GSHHS_shp``): draw coastlines on the pictures
            (`pictures.coastline_overlay`, needs pycoast).
    """
    overlay = coastline_overlay(coasts) if coasts else None
    bundle = resolve_bundle_path(weights, option_name="--weights option") if weights else resolve_bundle_path()
    options = {key: value for key, value in (("prenet_weights", str(bundle)), ("prenet_device", device),
                                             ("prenet_precision", precision)) if value}
    with satpy.config.set(**options), dask.config.set({"array.chunk-size": DASK_CHUNK_SIZE}):
        header = read_header(bundle)
        agri = inspect_agri_file(path, required_bands=header.bands)
        out_dir = make_output_folder(out_dir)
        scene = Scene(reader=agri.reader, filenames=[str(agri.path)])
        scene.load([*PRODUCTS, *PICTURES])
    missing = [name for name in (*PRODUCTS, *PICTURES) if name not in scene]
    if missing:
        raise RuntimeError(f"{agri.path}: could not make {', '.join(missing)} (see the log above)")
    stem = f"{agri.platform.replace('-', '')}_AGRI_{agri.observation}_{scene.start_time:%Y%m%d%H%M%S}_precipitation"
    final = Products(netcdf=out_dir / f"{stem}.nc", image=out_dir / f"{stem}_rate.png",
                     quicklook=out_dir / f"{stem}_rate_on_ir.png")
    remove_stale_staging(out_dir)
    with tempfile.TemporaryDirectory(prefix=f"{STAGING_PREFIX}{socket.gethostname()}.{os.getpid()}.",
                                     dir=out_dir) as tmp:
        partial = Products(*(Path(tmp) / path.name for path in final.paths()))
        results = [
            scene.save_datasets(writer="cf", datasets=list(PRODUCTS), filename=str(partial.netcdf),
                                include_lonlats=lonlats, header_attrs=global_attributes(agri, header, institution),
                                encoding=_netcdf_encoding(scene[PRODUCTS[0]].shape, lonlats), compute=False),
            *(_save_picture(scene, name, filename, fill_value=fill_value, demo=header.is_demo, overlay=overlay)
              for name, filename, fill_value in zip(PICTURES, (partial.image, partial.quicklook), (None, 0),
                                                    strict=True)),
        ]
        try:
            with ProgressBar(dt=1.0) if progress else nullcontext():
                compute_writer_results(results)
        except OSError as error:  # HDF5 reads happen here, when the products are computed
            raise AGRIFileError(f"{agri.path}: reading the file failed while making the products ({error})") from error
        for written, target in zip(partial.paths(), final.paths(), strict=True):
            os.replace(written, target)
    LOG.info("Wrote %s", ", ".join(map(str, final.paths())))
    return final


def _save_picture(scene: Scene, name: str, filename: Path, *, fill_value: int | None, demo: bool,
                  overlay: dict | None):
    """Delayed PNG of picture ``name``: decorated (`pictures.decoration`), with ``overlay`` when given."""
    decorate = decoration(picture_title(scene[name].attrs), demo=demo, width=scene[name].shape[-1])
    return scene.save_dataset(name, writer=PICTURE_WRITER, config_files=[str(PICTURE_WRITER_CONFIG)],
                              filename=str(filename), fill_value=fill_value, overlay=overlay, decorate=decorate,
                              compress_level=PNG_COMPRESS_LEVEL, compute=False)


def global_attributes(agri: AGRIFile, header: BundleHeader, institution: str | None = None) -> dict[str, str]:
    """Global attributes of the NetCDF file of ``agri``'s products; satpy adds ``Conventions`` and ``history``."""
    return {"title": f"PRE-Net precipitation from {agri.platform} AGRI", "institution": institution or INSTITUTION,
            "source": source_attribute([agri], header), "references": REFERENCES}


def source_attribute(agri_files: list[AGRIFile], header: BundleHeader) -> str:
    """Global attribute ``source`` of products made from ``agri_files`` with the bundle of ``header``."""
    bundle = f"PRE-Net weights bundle {header.path.name} (purpose {header.purpose}, sha256 {header.sha256})"
    if header.is_demo:
        bundle += ": a demonstration bundle trained on simulated data only, not a measurement of real precipitation"
    inputs = ", ".join(f"{agri.path.name} ({agri.platform} AGRI L1 4 km)" for agri in agri_files)
    return f"{inputs}; {bundle}; satpy-prenet {__version__}"


def _netcdf_encoding(shape: tuple[int, ...], lonlats: bool) -> dict[str, dict]:
    """Encoding of the products' NetCDF file on a grid of ``shape``.

    `PRODUCT_ENCODING` with chunks no larger than the grid, the time in whole seconds since 1970 and, if written,
    the longitudes and latitudes chunked as the products.
    """
    chunks = [min(chunk, size) for chunk, size in zip(PRODUCT_ENCODING["chunksizes"], (1, *shape), strict=True)]
    product = {**PRODUCT_ENCODING, "chunksizes": chunks}
    encoding = {name: dict(product) for name in PRODUCTS}
    encoding["time"] = {"units": EPOCH}  # satpy's default, days since the scan start, needs floating point
    if lonlats:  # float32 resolves about a metre, far below the 4 km pixels
        lonlat = {**product, "chunksizes": chunks[1:], "dtype": "float32"}
        encoding.update(longitude=lonlat, latitude=dict(lonlat))
    return encoding


def remove_stale_staging(out_dir: Path) -> None:
    """Remove the staging folders that `retrieve_file` jobs killed outright (SIGKILL) left in ``out_dir``.

    Only folders named by `retrieve_file` (`STAGING_PREFIX`, host name, process id) are considered, and one is
    removed only when both hold: it was made on this host by a process that no longer exists, and nothing in it
    has changed for `STALE_AFTER_S`. The process of a running job exists, so its folder is never removed (a
    process id taken over by another process only keeps a dead job's folder longer); the age guards against
    process ids of another PID namespace under the same host name (containers). Folders of other hosts sharing
    the output folder are left to their own next run.
    """
    for folder in out_dir.glob(f"{STAGING_PREFIX}*"):
        if _left_behind(folder):
            LOG.warning("Removing %s, left behind by a killed job", folder)
            shutil.rmtree(folder, ignore_errors=True)


def _left_behind(folder: Path) -> bool:
    """Whether staging ``folder`` is of a dead process of this host and has not changed for `STALE_AFTER_S`."""
    owner = folder.name[len(STAGING_PREFIX):].rsplit(".", 2)  # host (may hold dots), process id, random part
    if len(owner) != 3 or owner[0] != socket.gethostname() or not owner[1].isdigit() or not folder.is_dir():
        return False
    try:
        os.kill(int(owner[1]), 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return time.time() - folder.stat().st_mtime > STALE_AFTER_S
    except (OSError, OverflowError):  # a process of another user, or a number no process can have
        pass
    return False
