# Copyright (c) 2026 satpy-prenet developers
#
# This program is free software: you can redistribute it and/or modify it under the terms of the GNU General Public
# License as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later
# version. See the LICENSE file.
"""Tiled inference of PRE-Net on the native AGRI grid (docs/inference.md).

- `tiling`: the tile grid, cutting and blending (numpy only);
- `runner`: batches on one device, mixed precision, locks, GPU out-of-memory back-off;
- `lazy`: the dask adapter;
- `engine`: `TiledRetrieval`, the three put together, and the product's rain gate.
"""

from satpy_prenet.inference.engine import TiledRetrieval, gate_rate

__all__ = ["TiledRetrieval", "gate_rate"]
