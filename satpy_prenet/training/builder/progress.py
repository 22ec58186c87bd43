# SPDX-License-Identifier: GPL-3.0-or-later
"""The commit record of a build (``<root>/progress.json``) and resuming from it.

The record holds the settings (a rerun with others is refused), the status of every unit run so far (``done``, or
``skipped: <reason>`` for a unit that missed a partner file and is retried by the next run), the sample ids a
retried unit already wrote, the simulation texts seen in the inputs, and the committed tile count of every store.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from satpy_prenet.atomic import atomic_path
from satpy_prenet.data import stores
from satpy_prenet.training.builder.config import BuildError

LOG = logging.getLogger(__name__)

#: Name of the commit record under the dataset root.
PROGRESS_FILE = "progress.json"
#: Skip reasons of a missing partner file: such units are retried by the next run.
RETRIED = ("no_gmi", "no_agri", "no_label")


class Progress:
    """The commit record of one dataset root."""

    def __init__(self, root: Path, settings: dict):
        """Load (and check) or start the record, and cut every store back to its committed count.

        Raises:
            BuildError: If the root was started with other settings, or a store lost committed tiles.
        """
        self.root, self.path = root, root / PROGRESS_FILE
        settings = json.loads(json.dumps(settings))
        if self.path.is_file():
            self.record = json.loads(self.path.read_text())
            self.record.setdefault("written", {})
            self.record.setdefault("simulation", [])
            if {key: self.record.get(key) for key in settings} != settings:
                raise BuildError(self.path, "the dataset root was started with other settings or split boundaries; "
                                            "build into a new root (or delete this one)")
        else:
            self.record = {**settings, "units": {}, "written": {}, "counts": {}, "simulation": []}
        for kind in stores.KINDS:
            for split in stores.SPLITS:
                self._cut_back(stores.store_path(root, kind, split), self.record["counts"].get(f"{kind}/{split}", 0))
        root.mkdir(parents=True, exist_ok=True)
        self._write()

    @staticmethod
    def _cut_back(path: Path, committed: int) -> None:
        """Cut a store back to ``committed`` tiles; remove it when nothing of it was committed."""
        if committed == 0:
            stores.delete(path)
        elif stores.tile_count(path) is None:
            raise BuildError(path, f"the store with {committed} committed tiles is gone; build into a new root")
        else:
            try:
                stores.truncate(path, committed)
            except stores.StoreError as err:
                raise BuildError(path, str(err).removeprefix(f"{path}: ")) from err

    def finished(self, unit_id: str) -> bool:
        """Whether an earlier run finished the unit (units left for a missing partner are not finished)."""
        return self.record["units"].get(unit_id) == "done"

    def written(self, unit_id: str) -> set[str]:
        """Sample ids that earlier runs of a retried unit wrote."""
        return set(self.record["written"].get(unit_id, ()))

    @property
    def simulation(self) -> set[str]:
        """Simulation texts of the inputs read by committed units."""
        return set(self.record["simulation"])

    def commit(self, unit_id: str, missing: str | None, written: set[str], simulation: set[str]) -> None:
        """Record a unit (``missing``: the reason it is to be retried) and the store counts, atomically."""
        if missing is None:
            self.record["units"][unit_id] = "done"
            self.record["written"].pop(unit_id, None)
        else:
            self.record["units"][unit_id] = f"skipped: {missing}"
            if written:
                self.record["written"][unit_id] = sorted(written)
        self.record["counts"] = counts(self.root)
        self.record["simulation"] = sorted(simulation)
        self._write()

    def _write(self) -> None:
        """Write the record atomically (a reader sees the old or the new file, never a partial one)."""
        with atomic_path(self.path) as partial:
            partial.write_text(json.dumps(self.record, indent=1, sort_keys=True))


def counts(root: Path) -> dict[str, int]:
    """Tiles in every existing store under ``root``, keyed ``<kind>/<split>``."""
    found = {}
    for kind in stores.KINDS:
        for split in stores.SPLITS:
            count = stores.tile_count(stores.store_path(root, kind, split))
            if count is not None:
                found[f"{kind}/{split}"] = count
    return found
