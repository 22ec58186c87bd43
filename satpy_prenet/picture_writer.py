# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``prenet_picture`` satpy writer: satpy's ``simple_image`` with its ``decorate`` option drawn lazily.

satpy draws ``decorate`` (``satpy.enhancements.overlays.add_decorate``) while the writer's graph is built: it
computes the picture there and keeps it as a float64 array, one more for each item drawn. A full-disc RGBA
picture is 241 MiB of float64, and trollflow2 builds the graphs of every file of a job before it computes any of
them, so a job held about 650 MiB of pictures before writing began (docs/benchmarks.md). This writer draws the same
items with pydecorate inside the graph: each picture is computed, decorated and written in one task when the
files are computed. The options are those of ``simple_image``; the drawing is pydecorate's, as satpy's.

The task draws on the 8-bit picture PIL saves. trollimage's ``XRImage.apply_pil`` (the way satpy lays pycoast
overlays) would turn the drawn picture back into floats of the enhanced image's type and make the 8-bit picture
again to save it: 121 MiB more per full-disc RGBA picture in float32, 241 MiB in float64, for the same pixels.
"""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
from PIL import Image
from pydecorate import DecoratorAGG
from satpy.writers.core.image import ImageWriter
from satpy.writers.simple_image import PillowWriter

#: The writer's name.
PICTURE_WRITER = "prenet_picture"
#: Its configuration. satpy lists it through the ``satpy.writers`` entry point, but ``Scene.save_dataset`` looks for
#: writers on satpy's config path only: ``retrieve`` gives this file as ``config_files``, and the chain's
#: ``load_prenet_model`` puts its folder on satpy's config path.
PICTURE_WRITER_CONFIG = Path(__file__).parent / "etc" / "writers" / f"{PICTURE_WRITER}.yaml"
#: The items of a ``decorate`` list and the pydecorate methods that draw them (those satpy's ``add_decorate`` knows).
DRAWERS = {"text": "add_text", "logo": "add_logo", "scale": "add_scale"}


class PictureWriter(PillowWriter):
    """``simple_image`` with ``decorate`` drawn when the file is written, not when its graph is built."""

    def __init__(self, **kwargs):
        """Read this writer's configuration (`PICTURE_WRITER_CONFIG` unless ``config_files`` is given)."""
        kwargs.setdefault("config_files", [str(PICTURE_WRITER_CONFIG)])
        ImageWriter.__init__(self, **kwargs)

    def save_dataset(self, dataset, filename=None, fill_value=None, compute=True, decorate=None, **kwargs):
        """Save ``dataset`` as ``simple_image`` does; ``decorate`` is drawn lazily (see the module)."""
        items = _decoration_items(decorate)
        return super().save_dataset(dataset, filename=filename, fill_value=fill_value, compute=compute,
                                    prenet_decoration=items, **kwargs)

    def save_image(self, img, filename=None, compute=True, prenet_decoration=(), fill_value=None, fformat=None,
                   **format_kwargs):
        """Save the enhanced image as ``simple_image`` does, drawing ``prenet_decoration`` on it first.

        ``format_kwargs`` go to PIL's ``Image.save`` (e.g. ``compress_level``), as ``simple_image`` passes them.
        """
        if not prenet_decoration:
            return super().save_image(img, filename=filename, compute=compute, fill_value=fill_value,
                                      fformat=fformat, **format_kwargs)
        filename = filename or self.get_filename(**img.data.attrs)
        fformat = format_kwargs.pop("format", None) or fformat or Path(filename).suffix[1:]  # trollflow2: "format"
        mode = "RGBA" if img.mode.endswith("A") else "RGB"  # pydecorate draws on RGB(A), as satpy converts
        pixels, mode = img.convert(mode).pil_array(fill_value)
        written = da.map_blocks(_draw_and_save, pixels.rechunk(pixels.shape), mode, prenet_decoration, filename,
                                fformat, format_kwargs, chunks=((1,),),
                                drop_axis=[1, 2], dtype=object, meta=np.ndarray((), dtype=object))
        return [written.compute()[0] if compute else written]  # a list, as simple_image returns


def _decoration_items(decorate: dict | None) -> tuple[dict, ...]:
    """The items of satpy's ``decorate`` option, each checked to be one pydecorate knows."""
    if not decorate:
        return ()
    unknown = set(decorate) - {"decorate"}
    if unknown:
        raise ValueError(f"decorate: unknown options {sorted(unknown)}; expected {{'decorate': [items]}}")
    items = tuple(decorate.get("decorate") or ())
    for item in items:
        if len(item) != 1 or next(iter(item)) not in DRAWERS:
            raise ValueError(f"decorate: each item is one of {sorted(DRAWERS)} with its options, got {item!r}")
    return items


def _draw_and_save(pixels: np.ndarray, mode: str, items: tuple[dict, ...], filename: str, fformat: str,
                   format_kwargs: dict) -> np.ndarray:
    """Draw the decoration ``items`` in order on the 8-bit ``pixels`` and save them (one task per picture)."""
    image = Image.fromarray(pixels, mode)
    drawer = DecoratorAGG(image)  # pydecorate keeps the cursor between the items
    for item in items:
        ((kind, options),) = item.items()
        getattr(drawer, DRAWERS[kind])(**options)
    image.save(filename, fformat, **format_kwargs)
    return np.array([filename], dtype=object)
