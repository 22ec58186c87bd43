# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``prenet_picture`` satpy writer: satpy's ``simple_image`` with its ``decorate`` option drawn lazily.

satpy draws ``decorate`` (``satpy.enhancements.overlays.add_decorate``) while the writer's graph is built: it
computes the picture there and keeps it as a float64 array, one more for each item drawn. A full-disc RGBA
picture is 241 MiB of float64, and trollflow2 builds the graphs of every file of a job before it computes any of
them, so a job held about 650 MiB of pictures before writing began (docs/benchmarks.md). This writer draws the same
items with pydecorate inside the graph, through trollimage's ``XRImage.apply_pil`` (the way satpy lays pycoast
overlays): each picture is computed, decorated and written when the files are computed. The options are those of
``simple_image``; the drawing is pydecorate's, as satpy's.
"""

from __future__ import annotations

from pathlib import Path

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

    def save_image(self, img, filename=None, compute=True, prenet_decoration=(), fill_value=None, **kwargs):
        """Decorate the enhanced image lazily, then save it as ``simple_image`` does."""
        if prenet_decoration:
            mode = "RGBA" if img.mode.endswith("A") else "RGB"  # pydecorate draws on RGB(A), as satpy converts
            img = img.convert(mode).apply_pil(_draw, mode, pil_kwargs={"fill_value": fill_value},
                                              fun_args=(prenet_decoration,))
        return super().save_image(img, filename=filename, compute=compute, fill_value=fill_value, **kwargs)


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


def _draw(image: Image.Image, image_metadata: dict, items: tuple[dict, ...]) -> Image.Image:
    """Draw the decoration ``items`` on ``image`` in order (pydecorate keeps the cursor between them)."""
    drawer = DecoratorAGG(image)
    for item in items:
        ((kind, options),) = item.items()
        getattr(drawer, DRAWERS[kind])(**options)
    return image
