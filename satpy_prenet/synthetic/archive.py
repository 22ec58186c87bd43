# SPDX-License-Identifier: GPL-3.0-or-later
"""A simulated archive: AGRI, GMI, DPR and CLDAS files of the same atmosphere around GPM's passes over a region.

:func:`simulate_archive` finds GPM's passes over the region (:func:`satpy_prenet.synthetic.orbit.gpm_overpasses`),
and for each pass:

- the AGRI slots (every 15 minutes) within ``margin`` (10 minutes) of one of its GMI or DPR scans; each slot is
  simulated once on a window of the disc: the bounding box of the GMI and DPR footprints inside the region seen
  within the margin of the slot, clipped to the disc. A window larger than ``max_window_pixels`` is reduced to
  the footprints for which that slot is the nearest (within 7.5 minutes): the pass is in effect split into
  pieces of one slot each. Each slot is written as a regional AGRI L1 file;
- a GMI 1C and (where DPR's narrow swath reaches the region) a DPR 2A file, observed in the scene of each scan's
  nearest slot;
- the CLDAS hourly truth of every clock hour holding one of these slots: the hour's four slots simulated on the
  windows of the slots used in that hour, averaged by :func:`satpy_prenet.synthetic.cldas_file.hourly_truth`
  (so the truth is the hour mean over those windows and missing elsewhere).

The simulated surface height is written once (:func:`satpy_prenet.synthetic.elevation_file.write_elevation`).
Everything depends only on the seed, the times, the region and the configurations: the work runs as independent
tasks (one per clock hour, one per pass, one for the DEM) on any executor of :mod:`satpy_prenet.parallel`, with the
same files.

Layout under ``out_dir``: ``agri/``, ``gmi/``, ``dpr/``, ``cldas/``, ``elevation/``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from satpy_prenet.parallel import Executor, Future, SerialExecutor
from satpy_prenet.synthetic.agri_file import write_agri_l1
from satpy_prenet.synthetic.cldas_file import hourly_truth, write_cldas
from satpy_prenet.synthetic.config import WorldConfig
from satpy_prenet.synthetic.dpr import DPRConfig, observe_dpr
from satpy_prenet.synthetic.elevation_file import write_elevation
from satpy_prenet.synthetic.geometry import DISC_SIZE, Window, lonlat_to_pixel
from satpy_prenet.synthetic.gmi import GMIConfig, observe_gmi
from satpy_prenet.synthetic.gpm_file import write_dpr_2a, write_gmi_1c
from satpy_prenet.synthetic.orbit import Overpass, Swath, gpm_overpasses, in_region
from satpy_prenet.synthetic.world import SCAN_INTERVAL, SimulatedScene, World

logger = logging.getLogger(__name__)

#: Pixels added around the footprints' bounding box (covers GMI's largest footprint blur).
WINDOW_PAD = 8
_HOUR = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Archive:
    """Files of a simulated archive (each list sorted by name) and the passes they come from."""

    root: Path
    agri: tuple[Path, ...]
    gmi: tuple[Path, ...]
    dpr: tuple[Path, ...]
    cldas: tuple[Path, ...]
    elevation: Path | None
    overpasses: tuple[Overpass, ...]


def _floor_slot(time: dt.datetime) -> dt.datetime:
    return time.replace(minute=time.minute - time.minute % 15, second=0, microsecond=0)


def _scan_datetimes(swath: Swath) -> np.ndarray:
    return swath.time.astype("datetime64[ms]")


def _slot_gaps(overpass: Overpass, slot: dt.datetime) -> list[tuple[Swath, np.ndarray]]:
    """Each swath with the absolute time difference (s) of its scans to a slot."""
    when = np.datetime64(slot, "ms")
    return [(sw, np.abs((_scan_datetimes(sw) - when).astype(np.int64)) / 1000.0)
            for sw in (overpass.s1, overpass.fs) if sw.nscan]


def overpass_slots(overpass: Overpass, margin: dt.timedelta) -> list[dt.datetime]:
    """AGRI slots within ``margin`` of at least one GMI or DPR scan of the pass."""
    slot = _floor_slot(overpass.start_time - margin)
    slots = []
    while slot <= overpass.end_time + margin:
        if any(gap.min() <= margin.total_seconds() for _, gap in _slot_gaps(overpass, slot)):
            slots.append(slot)
        slot += SCAN_INTERVAL
    return slots


def _bbox(platform: str, points: list[tuple[np.ndarray, np.ndarray]]) -> Window | None:
    """Bounding box (padded, clipped to the disc) of the visible points, or None."""
    lines, cols = [], []
    for lon, lat in points:
        line, col = lonlat_to_pixel(platform, lon, lat)
        ok = np.isfinite(line)
        lines.append(line[ok])
        cols.append(col[ok])
    line, col = np.concatenate(lines), np.concatenate(cols)
    if line.size == 0:
        return None
    line0 = max(int(np.floor(line.min())) - WINDOW_PAD, 0)
    line1 = min(int(np.ceil(line.max())) + WINDOW_PAD + 1, DISC_SIZE)
    col0 = max(int(np.floor(col.min())) - WINDOW_PAD, 0)
    col1 = min(int(np.ceil(col.max())) + WINDOW_PAD + 1, DISC_SIZE)
    return Window(line0, line1, col0, col1)


def slot_window(overpass: Overpass, slot: dt.datetime, platform: str, margin: dt.timedelta,
                max_pixels: int) -> Window | None:
    """Window of the disc covering the pass's footprints in the region seen within ``margin`` of the slot."""
    window = None
    for limit in (margin.total_seconds(), SCAN_INTERVAL.total_seconds() / 2):
        points = []
        for sw, gap in _slot_gaps(overpass, slot):
            near = gap <= limit
            inside = in_region(sw.lon[near], sw.lat[near], overpass.region)
            points.append((sw.lon[near][inside], sw.lat[near][inside]))
        window = _bbox(platform, points)
        if window is None or window.shape[0] * window.shape[1] <= max_pixels:
            return window
        logger.debug("Window %s of %s at %s exceeds %d pixels; keeping the nearest scans", tuple(window),
                     overpass.label, slot, max_pixels)
    return window


def _union(a: Window | None, b: Window) -> Window:
    if a is None:
        return b
    return Window(min(a.line0, b.line0), max(a.line1, b.line1), min(a.col0, b.col0), max(a.col1, b.col1))


def _light(scene: SimulatedScene) -> SimulatedScene:
    """The scene without what AGRI saw (the GPM observation models need only the atmosphere)."""
    return dataclasses.replace(scene, bt={}, extra_bt={}, reflectance={})


@dataclass
class _Plan:
    """Which slots to simulate on which windows, and which pass needs which slot."""

    windows: dict[dt.datetime, Window]
    needs: dict[str, list[dt.datetime]]

    def hours(self) -> dict[dt.datetime, set[Window]]:
        out: dict[dt.datetime, set[Window]] = {}
        for slot, window in self.windows.items():
            out.setdefault(slot.replace(minute=0), set()).add(window)
        return dict(sorted(out.items()))


def _plan(overpasses: list[Overpass], platform: str, margin: dt.timedelta, max_pixels: int) -> _Plan:
    windows: dict[dt.datetime, Window] = {}
    needs: dict[str, list[dt.datetime]] = {}
    for overpass in overpasses:
        needs[overpass.label] = []
        for slot in overpass_slots(overpass, margin):
            window = slot_window(overpass, slot, platform, margin, max_pixels)
            if window is not None:
                windows[slot] = _union(windows.get(slot), window)
                needs[overpass.label].append(slot)
    return _Plan(dict(sorted(windows.items())), needs)


def simulate_archive(out_dir: str | os.PathLike, *, seed: int, start: dt.datetime, end: dt.datetime,
                     platform: str = "FY-4A", region: tuple[float, float, float, float] = (60.0, 160.0, 0.0, 65.0),
                     config: WorldConfig | None = None, gmi_config: GMIConfig | None = None,
                     dpr_config: DPRConfig | None = None, margin: dt.timedelta = dt.timedelta(minutes=10),
                     max_window_pixels: int = 1_500_000, elevation: bool = True, progress: bool = True,
                     executor: Executor | None = None) -> Archive:
    """Simulate and write the AGRI, GMI, DPR, CLDAS and elevation files of GPM's passes over a region.

    The work is split into tasks: one per clock hour (its AGRI files and CLDAS file; it hands the scenes the passes
    use on), one per pass (its GMI and DPR files) and one for the elevation file. Every file depends only on the
    seed, its time and the platform, and is written atomically under a deterministic name, so the files are the
    same whichever executor runs the tasks and in whatever order.

    Args:
        out_dir: Root directory (created if missing).
        seed: Seed of the world, the orbit's node longitude and the instrument models.
        start: Start of the time range of the GPM scans (naive UTC).
        end: End of the time range (exclusive).
        platform: ``"FY-4A"`` or ``"FY-4B"``.
        region: ``(lon_min, lon_max, lat_min, lat_max)`` of interest (default: the CLDAS domain).
        config: World parameters.
        gmi_config: GMI model knobs.
        dpr_config: DPR model knobs.
        margin: Largest time difference between an AGRI slot and the GPM scans it is simulated for.
        max_window_pixels: Cap on the pixels of one slot's window (see module notes).
        elevation: Also write the simulated elevation file.
        progress: Show a tqdm progress bar over the tasks.
        executor: Runs the tasks (:func:`satpy_prenet.parallel.executor`); default: serially in this process.

    Returns:
        The archive's files and overpasses.
    """
    root = Path(out_dir)
    executor = executor or SerialExecutor()
    world = World(seed, config)
    overpasses = gpm_overpasses(start, end, region=region, seed=seed)
    plan = _plan(overpasses, platform, margin, max_window_pixels)
    hours = plan.hours()
    logger.info("%d GPM passes over %s between %s and %s: %d AGRI slots in %d hours", len(overpasses), region,
                start, end, len(plan.windows), len(hours))
    for overpass in overpasses:
        if not plan.needs[overpass.label]:
            logger.warning("No AGRI scene sees pass %s; no GPM files written", overpass.label)
    passes = [op for op in overpasses if plan.needs[op.label]]
    last_hour = {op.label: max(plan.needs[op.label]).replace(minute=0) for op in passes}
    outputs = [executor.submit(_simulate_elevation, seed, root)] if elevation else []
    scenes: dict[dt.datetime, Future] = {}
    for hour, windows in hours.items():
        slots = {slot: window for slot, window in plan.windows.items() if slot.replace(minute=0) == hour}
        done = executor.submit(_simulate_hour, world, platform, hour, sorted(windows, key=tuple), slots, root)
        outputs.append(executor.submit(_item, done, 0))
        scenes[hour] = executor.submit(_item, done, 1)
        for overpass in (op for op in passes if last_hour[op.label] == hour):
            needs = plan.needs[overpass.label]
            kept = [scenes[when] for when in sorted({slot.replace(minute=0) for slot in needs})]
            outputs.append(executor.submit(_simulate_pass, executor.put(overpass), needs, kept, seed, gmi_config,
                                           dpr_config, root))
        still = {slot.replace(minute=0) for op in passes if last_hour[op.label] > hour
                 for slot in plan.needs[op.label]}
        scenes = {when: future for when, future in scenes.items() if when in still}
    files: dict[str, list[Path]] = {"agri": [], "gmi": [], "dpr": [], "cldas": [], "elevation": []}
    for future in tqdm(executor.as_completed(outputs), total=len(outputs), desc="simulation tasks", unit="task",
                       disable=not progress):
        for kind, paths in future.result().items():
            files[kind].extend(paths)
    return Archive(root, *(tuple(sorted(files[key])) for key in ("agri", "gmi", "dpr", "cldas")),
                   files["elevation"][0] if elevation else None, tuple(overpasses))


def _item(pair: tuple, index: int):
    """One item of a task's result (so that the parts of a result can be released apart)."""
    return pair[index]


def _simulate_elevation(seed: int, root: Path) -> dict[str, list[Path]]:
    """Write the simulated elevation file."""
    return {"elevation": [write_elevation(seed, root / "elevation")]}


def _simulate_hour(world: World, platform: str, hour: dt.datetime, windows: list[Window],
                   slots: dict[dt.datetime, Window], root: Path) -> tuple[dict[str, list[Path]],
                                                                          dict[dt.datetime, SimulatedScene]]:
    """Simulate an hour: write its AGRI files and its CLDAS file; return them and the scenes the passes use.

    The hour's four slots are simulated on each window (lazily, in the order of the windows); the scene of a slot on
    its own window (``slots``) is written as an AGRI file and kept, without what AGRI saw. The other scenes only feed
    the hourly truth, so AGRI's view of them is not simulated.
    """
    agri: list[Path] = []
    kept: dict[dt.datetime, SimulatedScene] = {}

    def scenes() -> Iterator[SimulatedScene]:
        for window in windows:
            for k in range(4):
                slot = hour + k * SCAN_INTERVAL
                written = slots.get(slot) == window
                scene = world.scene(slot, platform, window, observe=written)
                if written:
                    agri.append(write_agri_l1(scene, root / "agri"))
                    kept[slot] = _light(scene)
                yield scene

    truth = hourly_truth(scenes(), seed=world.seed)
    cldas = write_cldas(truth, root / "cldas", data_time=hour + _HOUR)
    return {"agri": agri, "cldas": [cldas]}, kept


def _simulate_pass(overpass: Overpass, needs: list[dt.datetime], kept: list[dict[dt.datetime, SimulatedScene]],
                   seed: int, gmi_config: GMIConfig | None, dpr_config: DPRConfig | None,
                   root: Path) -> dict[str, list[Path]]:
    """Observe one pass with GMI and DPR in the scenes of its slots (``kept``: by hour) and write the files."""
    by_slot = {slot: scene for hour in kept for slot, scene in hour.items()}
    scenes = [by_slot[slot] for slot in needs]
    files = {"gmi": [write_gmi_1c(observe_gmi(overpass, scenes, seed=seed, config=gmi_config), root / "gmi")]}
    if overpass.fs.nscan:
        files["dpr"] = [write_dpr_2a(observe_dpr(overpass, scenes, seed=seed, config=dpr_config), root / "dpr")]
    return files
