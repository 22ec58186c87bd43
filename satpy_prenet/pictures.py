# SPDX-License-Identifier: GPL-3.0-or-later
"""The rain-rate colours and the decorations of the product pictures (title, legend, demonstration mark).

The colours are one palette, used by the satpy enhancements (``etc/enhancements/agri.yaml`` names
`RAIN_RATE_PALETTE`) and by the legend. The decorations are satpy's ``decorate`` option of ``save_dataset``, which
pydecorate draws; ``retrieve`` passes it, and the trollflow2 worker ``decorate_pictures`` adds it to the product
list's pictures.

The legend is a row of pydecorate text boxes, one per rain class in its colour, not pydecorate's colour bar: that
bar spaces values linearly, which would squeeze the classes up to 5 mm/h, most of the rain, into a tenth of it.
It is drawn once into a shipped image (`LEGEND`) that the pictures carry as a logo.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import aggdraw
import pydecorate
from PIL import Image
from pydecorate import DecoratorAGG

#: The pictures of the products: the rain-rate map (rain on a white disc) and the quick look (rain on the
#: 10.8 um image in grey); composites of ``etc/composites/agri.yaml``.
PICTURES = ("precipitation_rate_map", "precipitation_rate_on_ir")
#: Lower bounds (mm/h) of the rain classes and their colours (RGB). Below the first bound the rate is dry.
RAIN_CLASSES = (
    (0.1, (170, 235, 255)),
    (0.5, (95, 185, 250)),
    (1.0, (35, 120, 235)),
    (2.0, (25, 175, 70)),
    (5.0, (245, 230, 45)),
    (10.0, (250, 150, 25)),
    (20.0, (225, 30, 30)),
    (50.0, (165, 0, 165)),
)
#: satpy ``colorize`` palette of the rain rate: transparent where dry, the class colours from 0.1 mm/h on (values
#: between two bounds are interpolated; beyond 50 mm/h the last colour).
RAIN_RATE_PALETTE = {
    "values": [0.0, 0.0999] + [bound for bound, _ in RAIN_CLASSES],
    "colors": [[0, 0, 0, 0], [0, 0, 0, 0]] + [[*colour, 255] for _, colour in RAIN_CLASSES],
    "color_scale": 255,
}
#: Colour of the pixels of the disc where the inputs give no retrieval (RGB).
NO_DATA_COLOUR = (255, 140, 200)
#: satpy ``palettize`` palettes of ``precipitation_quality`` (0 good, 1 degraded, 2 invalid input, 3 space):
#: the disc in white with no data in its colour and space dark (the background of the rain-rate map), and no data
#: and space in black alone (laid over the infrared background).
DISC_PALETTE = {"values": [0, 1, 2, 3],
                "colors": [[255, 255, 255, 255], [255, 255, 255, 255], [*NO_DATA_COLOUR, 255], [25, 25, 40, 255]],
                "color_scale": 255}
NO_DATA_PALETTE = {"values": [0, 1, 2, 3],
                   "colors": [[0, 0, 0, 0], [0, 0, 0, 0], [*NO_DATA_COLOUR, 255], [0, 0, 0, 255]],
                   "color_scale": 255}
#: Title of the pictures, formatted with the product's metadata (trollflow2 formats it with the message's).
TITLE = "{platform_name} AGRI  {start_time:%Y-%m-%d %H:%M} UTC  {long_name}"
#: Mark of pictures made with a demonstration bundle.
DEMO_MARK = "DEMONSTRATION MODEL trained on simulated data: not a measurement of real precipitation"
#: Background of the demonstration mark (RGB).
DEMO_MARK_COLOUR = (200, 16, 46)
#: pycoast settings of the coastlines: GSHHG level 1 (land and sea) at the intermediate resolution (about 1 km,
#: finer than the 4 km pixels), in yellow, which no rain class or background uses.
COASTLINES = {"level": 1, "resolution": "i", "outline": (255, 215, 0), "width": 1.5}
#: The rain-rate legend drawn by `draw_legend` at `FONT_SIZE` (``python -m satpy_prenet.pictures`` redraws it;
#: a test checks that it matches the palette).
LEGEND = Path(__file__).parent / "etc" / "rain_rate_legend.png"
#: zlib level of the PNG files (PIL's ``compress_level``): 1 writes a full-disc picture 2-3x faster than PIL's
#: default 6 (0.4 s against 1.3 s for the quick look) for files 12-15 % larger (docs/benchmarks.md).
PNG_COMPRESS_LEVEL = 1
#: Font of the decorations: the one pydecorate ships.
FONT = str(Path(pydecorate.__file__).parent / "fonts" / "DejaVuSerif.ttf")
#: Largest text height in pixels, reached on pictures of 1920 pixels and wider (a full disc is 2748).
FONT_SIZE = 32
#: Space around the text inside its box, pixels (pydecorate's default).
MARGIN = 5


def font_size(width: int) -> int:
    """Text height for a picture ``width`` pixels wide: `FONT_SIZE`, smaller on narrow pictures (10 at least)."""
    return max(10, min(FONT_SIZE, width // 60))


def decoration(title: str, *, demo: bool, width: int) -> dict:
    """Satpy's ``decorate`` option for one picture ``width`` pixels wide.

    The title at the top left, `DEMO_MARK` under it on red when ``demo``, and the rain-rate legend (`LEGEND`, as
    high as the text, or less on pictures too narrow for it) at the bottom left. ``width`` sets the text height
    (`font_size`).
    """
    size = font_size(width)
    height = _box_height(size)
    items = [_box(title, "white", size=size, align={"top_bottom": "top", "left_right": "left"}, cursor=[0, 0])]
    if demo:  # its own line: pydecorate places boxes side by side unless given where to start
        items.append(_box(DEMO_MARK, _hex(DEMO_MARK_COLOUR), colour="white", size=size, cursor=[0, height]))
    with Image.open(LEGEND) as image:  # one image: satpy converts the whole picture once per item it draws
        legend_height = min(height, width * image.height // image.width)
    items.append({"logo": {"logo_path": str(LEGEND), "height": legend_height, "margins": [0, 0], "bg_opacity": 0,
                           "outline": None, "align": {"top_bottom": "bottom", "left_right": "left"}}})
    return {"decorate": items}


def draw_legend() -> Image.Image:
    """The rain-rate legend as `LEGEND` holds it: one box per rain class in its colour, and no data."""
    boxes = [_box("rain rate, mm/h:", "white")]
    boxes += [_box(f"{bound:g}" + ("+" if index == len(RAIN_CLASSES) - 1 else ""), _hex(colour),
                   colour="white" if sum(colour) < 400 else "black")
              for index, (bound, colour) in enumerate(RAIN_CLASSES)]
    boxes.append(_box("no data", _hex(NO_DATA_COLOUR)))
    canvas = Image.new("RGBA", (40 * FONT_SIZE, _box_height(FONT_SIZE)), (0, 0, 0, 0))
    drawer = DecoratorAGG(canvas)
    for box in boxes:
        drawer.add_text(**box["text"])
    return canvas.crop((0, 0, drawer.style["cursor"][0], canvas.height))


def _box(text: str, background: str, *, colour: str = "black", size: int = FONT_SIZE, **placement) -> dict:
    """A pydecorate text box: ``text`` in ``colour`` on ``background``, one line of `FONT` at ``size``."""
    return {"text": {"txt": text, "font": FONT, "font_size": size, "line": colour, "bg": background,
                     "bg_opacity": 255, "outline": background, "margins": [MARGIN, MARGIN],
                     "height": _box_height(size), **placement}}


def _box_height(size: int) -> int:
    """Height of a pydecorate box of one line of text in `FONT` at ``size``, measured as pydecorate does."""
    draw = aggdraw.Draw("RGB", (1, 1))
    return int(draw.textsize("Ag", aggdraw.Font("black", FONT, size))[1] + 2 * MARGIN)


def coastline_overlay(coasts: str | Path) -> dict:
    """The ``overlay`` option of satpy's ``save_dataset``: the GSHHG coastlines of folder ``coasts``.

    ``coasts`` holds ``GSHHS_shp`` (``GSHHS_shp/i/GSHHS_i_L1.shp``, as the GSHHG distribution unpacks).

    Raises:
        ValueError: Naming the folder, if it holds no ``GSHHS_shp``, or if pycoast is not installed.
    """
    if not (Path(coasts) / "GSHHS_shp").is_dir():
        raise ValueError(f"{coasts}: no GSHHS_shp folder of GSHHG coastline shapefiles in it")
    if importlib.util.find_spec("pycoast") is None:
        raise ValueError(f"coastlines from {coasts} need pycoast: pip install 'satpy-prenet[coastlines]'")
    return {"coast_dir": str(coasts), "overlays": {"coasts": dict(COASTLINES)}}


def picture_title(attrs: dict) -> str:
    """`TITLE` of a picture with metadata ``attrs`` (``platform_name``, ``start_time``, ``long_name``)."""
    return TITLE.format(**attrs)


def _hex(colour: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{channel:02x}" for channel in colour)


if __name__ == "__main__":
    draw_legend().save(LEGEND)
