# SPDX-License-Identifier: GPL-3.0-or-later
"""Several retrievals compared on the same pixels, accumulated image by image in constant memory.

Each method is scored only where every method and the label are valid, so that the rows of a report are
comparable: a method that gives no value at a pixel (space, an invalid input) removes that pixel for all. Besides the
streaming scores of each method, a :class:`Comparison` keeps a density histogram of (label, prediction) on
logarithmic rate bins, for the density scatter, and the maps of the image with the most labelled rain, for the side by
side figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from satpy_prenet.evaluation.metrics import FSS_SCALES, RAIN_THRESHOLD, StreamingScores, as_float64

#: Edges of the rate bins of the density histogram, mm/h: below the rain threshold, then logarithmic to 300 mm/h.
RATE_BIN_EDGES = np.concatenate([[0.0], np.geomspace(RAIN_THRESHOLD, 300.0, 41), [np.inf]])
#: Block sizes of the neighbourhood CSIs (the paper's CSI-4 and CSI-8).
BLOCKS = (4, 8)


@dataclass
class SampleMaps:
    """The maps of one image: the label and each method's rate, with the image's name."""

    name: str
    label: np.ndarray
    predictions: dict[str, np.ndarray]

    @property
    def rain_pixels(self) -> int:
        """Pixels of the label at or above the rain threshold."""
        return int(np.count_nonzero(self.label >= RAIN_THRESHOLD))


@dataclass
class Comparison:
    """Scores, density histograms and a sample of maps of several methods over the same images.

    Args:
        methods: Names of the methods, in the order of the report.
        threshold: Rain threshold, mm/h (inclusive).
        fss_scales: Window sides of the fractions skill scores (none: faster).
    """

    methods: Sequence[str]
    threshold: float = RAIN_THRESHOLD
    fss_scales: Sequence[int] = FSS_SCALES
    scores: dict[str, StreamingScores] = field(init=False)
    density: dict[str, np.ndarray] = field(init=False)
    sample: SampleMaps | None = field(init=False, default=None)
    images: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        """One accumulator and one histogram per method."""
        self.methods = list(self.methods)
        if not self.methods or len(set(self.methods)) != len(self.methods):
            raise ValueError(f"a comparison needs distinct method names, got {self.methods}")
        bins = len(RATE_BIN_EDGES) - 1
        self.scores = {name: StreamingScores(threshold=self.threshold, blocks=BLOCKS, fss_scales=self.fss_scales)
                       for name in self.methods}
        self.density = {name: np.zeros((bins, bins), np.int64) for name in self.methods}

    def add(self, label, predictions: Mapping[str, object], name: str = "") -> None:
        """Add one image (H, W): the label and each method's prediction, in mm/h.

        Raises:
            ValueError: A method is missing or unknown, or the shapes differ or are not images.
        """
        if set(predictions) != set(self.methods):
            raise ValueError(f"{name or 'image'}: predictions for {sorted(predictions)}, expected {self.methods}")
        label = as_float64(label)
        if label.ndim != 2:
            raise ValueError(f"{name or 'image'}: the label must be an image (H, W), got shape {label.shape}")
        arrays = {method: as_float64(predictions[method]) for method in self.methods}
        for method, array in arrays.items():
            if array.shape != label.shape:
                raise ValueError(f"{name or 'image'}: {method} has shape {array.shape}, the label {label.shape}")
        common = np.isfinite(label)
        for array in arrays.values():
            common &= np.isfinite(array)
        label = np.where(common, label, np.nan)
        for method, array in arrays.items():
            array = np.where(common, array, np.nan)
            self.scores[method].update(array, label)
            self.density[method] += np.histogram2d(label[common], array[common], bins=RATE_BIN_EDGES)[0].astype(
                np.int64)
        self.images += 1
        candidate = SampleMaps(name, label.astype(np.float32),
                               {method: np.where(common, array, np.nan).astype(np.float32)
                                for method, array in arrays.items()})
        if self.sample is None or candidate.rain_pixels > self.sample.rain_pixels:
            self.sample = candidate

    def table(self) -> list[dict]:
        """One row per method: its name, then the paper's columns and the extra scores, and the pixel count."""
        return [{"method": name, **acc.table_row(), "n_pixels": acc.result().n_pixels}
                for name, acc in self.scores.items()]

    def by_threshold(self) -> list[dict]:
        """Categorical scores by threshold, one row per method and threshold."""
        return [{"method": name, **row} for name, acc in self.scores.items() for row in acc.by_threshold()]

    def by_rate_class(self) -> list[dict]:
        """Continuous scores by rate class of the label, one row per method and class."""
        return [{"method": name, **row} for name, acc in self.scores.items() for row in acc.by_rate_class()]
