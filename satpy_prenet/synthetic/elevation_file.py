# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the simulated world's surface height as a DEM GeoTIFF laid out as GMTED2010 distributes it.

Layout: one Int16 band of height in metres (sea 0 m), nodata -32768, EPSG:4326, north-up, deflate-compressed and
tiled, on a regular grid whose cell edges are multiples of the resolution (0.0625 degree by default: the CLDAS
grid, so that cell centres coincide with the label's). A GeoTIFF tag ``simulated`` and ``Simulation`` say that it
is not real data. :func:`satpy_prenet.data.elevation.read_elevation` reads it like a real DEM.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import rasterio

from satpy_prenet.atomic import atomic_path
from satpy_prenet.synthetic.surface import global_surface

logger = logging.getLogger(__name__)

#: Nodata value of the Int16 band (as in GMTED2010).
NODATA = -32768
#: Default region (west, east, south, north) in degrees: the CLDAS Asia domain.
DEFAULT_REGION = (60.0, 160.0, 0.0, 65.0)


def elevation_filename(seed: int, resolution: float) -> str:
    """Name of the simulated DEM, e.g. ``simulated_dem_seed42_0p0625deg.tif``."""
    return f"simulated_dem_seed{seed}_{f'{resolution:g}'.replace('.', 'p')}deg.tif"


def write_elevation(seed: int, out_dir: str | os.PathLike, *, resolution: float = 0.0625,
                    region: tuple[float, float, float, float] = DEFAULT_REGION) -> Path:
    """Write the surface height of the world of ``seed`` over ``region`` as an Int16 GeoTIFF in metres.

    Args:
        seed: Seed of the simulated world (its surface, :func:`satpy_prenet.synthetic.surface.global_surface`).
        out_dir: Directory (created if missing).
        resolution: Grid spacing in degrees.
        region: (west, east, south, north) edges in degrees; the grid's cell centres lie half a cell inside.

    Returns:
        Path of the complete file.

    Raises:
        ValueError: If the resolution is not positive or the region is empty.
    """
    west, east, south, north = region
    if resolution <= 0 or east <= west or north <= south:
        raise ValueError(f"need a positive resolution and a non-empty region (west, east, south, north), "
                         f"not {resolution} and {region}")
    cols = int(round((east - west) / resolution))
    rows = int(round((north - south) / resolution))
    lon = west + resolution * (np.arange(cols) + 0.5)
    lat = north - resolution * (np.arange(rows) + 0.5)  # north-up: first row is the northernmost
    grid_lon, grid_lat = np.meshgrid(lon, lat)
    height_km = global_surface(seed).sample("elevation", grid_lon, grid_lat)
    height = np.clip(np.round(height_km * 1000.0), -32767, 32767).astype(np.int16)
    final = Path(out_dir) / elevation_filename(seed, resolution)
    profile = {"driver": "GTiff", "width": cols, "height": rows, "count": 1, "dtype": "int16",
               "crs": "EPSG:4326", "transform": rasterio.Affine(resolution, 0.0, west, 0.0, -resolution, north),
               "nodata": NODATA, "compress": "deflate", "tiled": True, "blockxsize": 256, "blockysize": 256}
    with atomic_path(final) as partial:
        with rasterio.open(partial, "w", **profile) as dst:
            dst.write(height, 1)
            dst.update_tags(simulated="true", seed=str(seed),
                            Simulation=f"Simulated by satpy_prenet.synthetic (not real data): seed={seed}, "
                                       "surface height of the simulated world",
                            units="m")
            dst.set_band_description(1, "surface height above sea level (m), SIMULATED")
    logger.info("Wrote %s", final)
    return final
