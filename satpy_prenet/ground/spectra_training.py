# SPDX-License-Identifier: GPL-3.0-or-later
"""Training the drop-spectrum networks: samples, event-wise splits, per-layer training, the integral baseline, files.

The data are an ``xarray.Dataset`` with dimensions ``time`` (1-minute samples), ``height`` (gate heights in m) and
``diameter`` (mm); ``drop_spectrum`` (time, height, diameter) holds N(D) in m^-3 mm^-1 retrieved aloft by a
vertically pointing FMCW rain radar (NaN at unusable gates and at missing minutes), ``rain_rate`` (time) the 1-minute
mean rain rate at the ground in mm/h (the target), ``event`` (time) the rain-event id (0 when dry), and the
coordinates ``diameter_width`` (mm) and ``fall_speed`` (m/s) run along ``diameter``.

The features of a minute are log10(1 + N) for every chosen gate and diameter bin, flattened height-major, with NaN
set to 0. A sample is the sequence of the ``sequence_minutes`` minutes ending at (and including) a target minute.
The networks are those of `satpy_prenet.ground.networks`; the baseline is the drop-spectrum algorithm, the rain rate
integrated from the spectrum at one gate.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from satpy_prenet.bundle import tensors_sha256
from satpy_prenet.ground.networks import NETWORKS, SequenceRegressor, build_network
from satpy_prenet.ground.simulator import gate_moments

#: safetensors metadata key holding the JSON metadata of a saved network.
METADATA_KEY = "satpy_prenet_ground"
#: Value of the metadata's ``format`` field.
FORMAT_NAME = "satpy-prenet-ground-spectra"
#: Version of the file layout this code writes and reads.
FORMAT_VERSION = 1
#: Variables and coordinates a dataset must have.
REQUIRED_VARIABLES = ("drop_spectrum", "rain_rate", "event", "diameter_width", "fall_speed")
#: Standard deviations below this count as a constant feature, scaled by 1 instead.
MIN_STD = 1e-6


@dataclass(frozen=True)
class SpectraConfig:
    """Samples, network sizes and training settings.

    The paper gives layer 1 (LSTM, 256 units, dropout 0.2) a learning rate of 0.009 and 300 iterations and layer 2
    (LSTM, 128 units) 0.001 and 200 iterations. Our reading: Adam with two parameter groups, the first LSTM layer at
    ``lr1`` and everything after it (attention, second layer, head) at ``lr2``; iterations are epochs; each group is
    updated for its own number of epochs and then frozen (learning rate 0, no gradient); training runs
    ``max(epochs1, epochs2)`` epochs and keeps the weights of the epoch with the best validation RMSE. The
    single-LSTM baseline uses (``lr1``, ``epochs1``) for its LSTM and (``lr2``, ``epochs2``) for its head.

    Attributes:
        sequence_minutes: Length of a sample's sequence in minutes, ending at the target minute.
        heights: Gate heights (m) whose spectra are features; None: every gate that is not all-NaN.
        min_rain_mm_h: Target minutes need a ground rain rate of at least this (mm/h).
        hidden1: Units of the first LSTM layer.
        hidden2: Units of the second LSTM layer.
        dropout: Dropout probability on the first layer's output.
        lr1: Learning rate of the first LSTM layer.
        lr2: Learning rate of the layers after it.
        epochs1: Epochs the first layer is updated for.
        epochs2: Epochs the layers after it are updated for.
        batch_size: Samples per optimiser step.
        patience: Stop after this many epochs without a better validation RMSE; None: run every epoch.
    """

    sequence_minutes: int = 10
    heights: tuple[float, ...] | None = None
    min_rain_mm_h: float = 0.1
    hidden1: int = 256
    hidden2: int = 128
    dropout: float = 0.2
    lr1: float = 0.009
    lr2: float = 0.001
    epochs1: int = 300
    epochs2: int = 200
    batch_size: int = 64
    patience: int | None = None

    def __post_init__(self):
        if self.heights is not None:
            object.__setattr__(self, "heights", tuple(float(height) for height in self.heights))
        rules = {"sequence_minutes": self.sequence_minutes >= 1, "min_rain_mm_h": self.min_rain_mm_h >= 0,
                 "hidden1": self.hidden1 >= 1, "hidden2": self.hidden2 >= 1, "dropout": 0 <= self.dropout < 1,
                 "lr1": self.lr1 >= 0, "lr2": self.lr2 >= 0, "epochs1": self.epochs1 >= 0,
                 "epochs2": self.epochs2 >= 0, "epochs": self.epochs >= 1, "batch_size": self.batch_size >= 1,
                 "patience": self.patience is None or self.patience >= 1}
        wrong = [name for name, ok in rules.items() if not ok]
        if wrong:
            raise ValueError(f"invalid spectra config values: {', '.join(wrong)}")

    @property
    def epochs(self) -> int:
        """Epochs of a training run, ``max(epochs1, epochs2)``."""
        return max(self.epochs1, self.epochs2)


#: Settings by name: the paper's, and a small one for quick runs and tests.
PRESETS = {"paper": SpectraConfig(), "small": SpectraConfig(hidden1=32, hidden2=16, epochs1=30, epochs2=20)}


@dataclass(frozen=True, eq=False)
class Normalisation:
    """Per-feature mean and standard deviation, with the feature layout they belong to.

    Attributes:
        mean: Mean of each feature, (len(heights) * len(diameters),), height-major.
        std: Standard deviation of each feature (1 for a constant one).
        heights: Gate heights of the features in m.
        diameters: Diameter-bin centres of the features in mm.
    """

    mean: np.ndarray
    std: np.ndarray
    heights: np.ndarray
    diameters: np.ndarray

    def __post_init__(self):
        for name, dtype in (("mean", np.float32), ("std", np.float32), ("heights", float), ("diameters", float)):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype))
        size = self.heights.size * self.diameters.size
        if self.mean.shape != (size,) or self.std.shape != (size,) or not np.all(self.std > 0):
            raise ValueError(f"normalisation needs {size} means and positive standard deviations "
                             f"({self.heights.size} heights x {self.diameters.size} diameters)")

    @classmethod
    def fit(cls, x: np.ndarray, heights: np.ndarray, diameters: np.ndarray) -> Normalisation:
        """Statistics of features ``x`` (..., features) over all samples and time steps."""
        flat = x.reshape(-1, x.shape[-1])
        mean = flat.mean(axis=0, dtype=np.float64)
        std = flat.std(axis=0, dtype=np.float64)
        return cls(mean, np.where(std < MIN_STD, 1.0, std), heights, diameters)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Normalised features, float32."""
        return ((x - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists, for JSON."""
        return {name: getattr(self, name).tolist() for name in ("mean", "std", "heights", "diameters")}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Normalisation:
        """The normalisation of :meth:`to_dict` (e.g. a saved model's metadata)."""
        return cls(data["mean"], data["std"], data["heights"], data["diameters"])


@dataclass(frozen=True, eq=False)
class SpectraSamples:
    """Sequences of spectrum features and the rain rate at the ground at their last minute.

    Attributes:
        x: Features (n, sequence, features), float32, log10(1 + N) before normalisation.
        y: Rain rate at the ground at the target minutes, (n,), float32, mm/h.
        times: Target minutes, (n,), datetime64[ns].
        events: Rain-event ids of the target minutes, (n,), int32.
        normalisation: Scaling of ``x`` the networks see (the training split's, after `split_by_event`).
    """

    x: np.ndarray
    y: np.ndarray
    times: np.ndarray
    events: np.ndarray
    normalisation: Normalisation

    def __len__(self) -> int:
        return self.y.size

    def subset(self, index: np.ndarray, normalisation: Normalisation | None = None) -> SpectraSamples:
        """The samples selected by ``index`` (mask or positions), optionally with another normalisation."""
        return SpectraSamples(self.x[index], self.y[index], self.times[index], self.events[index],
                              normalisation or self.normalisation)

    def normalised(self) -> np.ndarray:
        """Features after normalisation, float32."""
        return self.normalisation.apply(self.x)


class EventSplit(NamedTuple):
    """Samples split by whole rain events."""

    train: SpectraSamples
    validation: SpectraSamples
    test: SpectraSamples


@dataclass
class TrainingHistory:
    """Per-epoch scores of a training run.

    Attributes:
        train_rmse: RMSE (mm/h) over the epoch's training batches, in training mode (dropout on).
        validation_rmse: RMSE (mm/h) on the validation split after the epoch, in evaluation mode.
        best_epoch: Index of the epoch whose weights were kept.
    """

    train_rmse: list[float] = field(default_factory=list)
    validation_rmse: list[float] = field(default_factory=list)
    best_epoch: int = -1

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, e.g. for provenance."""
        return asdict(self)


def make_samples(dataset: xr.Dataset, config: SpectraConfig,
                 normalisation: Normalisation | None = None) -> SpectraSamples:
    """Sequences of spectrum features for every usable target minute.

    A target minute lies inside a rain event (``event != 0``), has a finite ground rain rate of at least
    ``config.min_rain_mm_h`` and a complete sequence: the ``sequence_minutes - 1`` minutes before it are all in the
    time coordinate (a minute that is there with NaN spectra counts, its features are 0).

    Args:
        dataset: Spectra, rain rate and events in the layout of this module's docstring.
        config: Sequence length, feature gates and rain threshold.
        normalisation: The normalisation to use (a trained model's), which also fixes the feature gates; None: fit
            one on these samples (`split_by_event` replaces it with the training split's).

    Returns:
        The samples, in time order.

    Raises:
        ValueError: If variables are missing, there are no rain events, no usable gates or no complete sequences.
    """
    missing = [name for name in REQUIRED_VARIABLES if name not in dataset.variables]
    if missing:
        raise ValueError(f"dataset lacks {', '.join(missing)} (needs {', '.join(REQUIRED_VARIABLES)})")
    spectrum = dataset["drop_spectrum"].transpose("time", "height", "diameter")
    diameters = dataset["diameter"].values
    if normalisation is None:
        heights = _feature_heights(spectrum, config.heights)
    else:
        heights = _feature_heights(spectrum, normalisation.heights)
        if normalisation.diameters.shape != diameters.shape or not np.allclose(normalisation.diameters, diameters):
            raise ValueError("the dataset's diameter bins differ from those of the normalisation")
    with np.errstate(invalid="ignore", divide="ignore"):
        features = np.log10(1 + spectrum.sel(height=heights).values.astype(np.float32))
    features = np.where(np.isfinite(features), features, 0).reshape(spectrum.sizes["time"], -1)
    targets = _target_positions(dataset, config)
    x = features[targets[:, None] + np.arange(1 - config.sequence_minutes, 1)]
    return SpectraSamples(x=x, y=dataset["rain_rate"].values[targets].astype(np.float32),
                          times=dataset["time"].values[targets].astype("datetime64[ns]"),
                          events=dataset["event"].values[targets].astype(np.int32),
                          normalisation=normalisation or Normalisation.fit(x, heights, diameters))


def _feature_heights(spectrum: xr.DataArray, requested: Any) -> np.ndarray:
    """The requested gate heights after checking them, or every usable one (not all-NaN), in the data's order."""
    usable = spectrum["height"].values[np.isfinite(spectrum).any(dim=("time", "diameter")).values]
    if usable.size == 0:
        raise ValueError("no usable gates: drop_spectrum is NaN at every height")
    if requested is None:
        return usable
    requested = np.asarray(requested, dtype=float)
    unusable = requested[~np.isin(requested, usable)]
    if unusable.size:
        raise ValueError(f"gate heights {unusable.tolist()} m are missing or all-NaN in drop_spectrum; "
                         f"usable: {usable.tolist()}")
    return requested


def _target_positions(dataset: xr.Dataset, config: SpectraConfig) -> np.ndarray:
    """Positions along ``time`` of the target minutes (see `make_samples`)."""
    minutes = (dataset["time"].values - dataset["time"].values[0]) / np.timedelta64(1, "m")
    if np.any(np.diff(minutes) <= 0):
        raise ValueError("time must be strictly increasing")
    events = dataset["event"].values
    if not np.any(events != 0):
        raise ValueError("no rain events: event is 0 at every minute")
    length = config.sequence_minutes
    positions = np.arange(length - 1, minutes.size)
    complete = minutes[positions] - minutes[positions - length + 1] == length - 1
    chosen = complete & (events[positions] != 0) & (dataset["rain_rate"].values[positions] >= config.min_rain_mm_h)
    if not np.any(chosen):
        raise ValueError(f"no samples: no minute inside a rain event with rain_rate >= {config.min_rain_mm_h} mm/h "
                         f"has a complete {length}-minute sequence")
    return positions[chosen]


def split_by_event(samples: SpectraSamples, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
                   seed: int = 0) -> EventSplit:
    """Train, validation and test splits of whole rain events, normalised with the training split's statistics.

    The events are shuffled with ``seed`` and dealt out in proportion to ``fractions`` (largest remainders), at
    least one to each split; no event lies in two splits.

    Args:
        samples: Samples of several events.
        fractions: Positive shares of the events for train, validation and test.
        seed: Seed of the shuffle.

    Returns:
        The three splits.
    """
    shares = np.asarray(fractions, dtype=float)
    if shares.shape != (3,) or not np.all(shares > 0):
        raise ValueError(f"fractions must be three positive numbers, got {fractions}")
    events = np.unique(samples.events)
    if events.size < 3:
        raise ValueError(f"need at least 3 rain events to split, got {events.size}")
    order = np.random.default_rng(seed).permutation(events)
    groups = np.split(order, np.cumsum(_split_counts(events.size, shares / shares.sum()))[:-1])
    train = samples.subset(np.isin(samples.events, groups[0]))
    normalisation = Normalisation.fit(train.x, samples.normalisation.heights, samples.normalisation.diameters)
    return EventSplit(*(samples.subset(np.isin(samples.events, group), normalisation) for group in groups))


def _split_counts(n: int, shares: np.ndarray) -> np.ndarray:
    """Counts summing to ``n`` in proportion to ``shares`` (largest remainders), none of them zero."""
    exact = shares * n
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact, kind="stable")[: n - counts.sum()]] += 1
    while np.any(counts == 0):
        counts[np.argmax(counts)] -= 1
        counts[np.argmin(counts)] += 1
    return counts


def train_network(kind: str, train: SpectraSamples, validation: SpectraSamples, config: SpectraConfig,
                  seed: int = 0, progress: bool = True,
                  on_epoch: Callable[[int, SequenceRegressor], None] | None = None,
                  ) -> tuple[SequenceRegressor, TrainingHistory]:
    """Train a network on MSE with the per-layer learning rates and epoch budgets of `SpectraConfig`.

    Deterministic on the CPU for a given seed (initialisation, dropout and batch order); the caller's torch random
    state is left as it was.

    Args:
        kind: ``lstm``, ``double_lstm`` or ``lstm_attention_lstm``.
        train: Training samples (their normalisation is applied to both splits).
        validation: Validation samples, which choose the kept weights.
        config: Sizes and training settings.
        seed: Seed of the initialisation, dropout and batch order.
        progress: Show a tqdm progress bar over the epochs.
        on_epoch: Called with the epoch index and the network after every epoch.

    Returns:
        The network with the weights of the best validation RMSE, in evaluation mode, and the history.

    Raises:
        FloatingPointError: If a training loss or validation RMSE is not finite.
    """
    for name, split in (("train", train), ("validation", validation)):
        if not len(split):
            raise ValueError(f"the {name} split holds no samples")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_network(kind, train.x.shape[-1], config.hidden1, config.hidden2, config.dropout)
        generator = torch.Generator().manual_seed(seed)
        train_data = _tensors(train, train.normalisation)
        validation_data = _tensors(validation, train.normalisation)
        return _fit(model, kind, train_data, validation_data, config, generator, progress, on_epoch)


def _tensors(samples: SpectraSamples, normalisation: Normalisation) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised features and targets as tensors."""
    return torch.from_numpy(normalisation.apply(samples.x)), torch.from_numpy(samples.y.astype(np.float32))


def _fit(model: SequenceRegressor, kind: str, train: tuple[torch.Tensor, torch.Tensor],
         validation: tuple[torch.Tensor, torch.Tensor], config: SpectraConfig, generator: torch.Generator,
         progress: bool, on_epoch: Callable[[int, SequenceRegressor], None] | None,
         ) -> tuple[SequenceRegressor, TrainingHistory]:
    """The epoch loop of `train_network`."""
    optimizer = torch.optim.Adam([{"params": model.first_layer_parameters(), "lr": config.lr1},
                                  {"params": model.other_parameters(), "lr": config.lr2}])
    history = TrainingHistory()
    best_state: dict[str, torch.Tensor] = {}
    bar = tqdm(range(config.epochs), desc=kind, unit="epoch", disable=not progress)
    for epoch in bar:
        _freeze_spent_groups(optimizer, (config.epochs1, config.epochs2), epoch)
        history.train_rmse.append(_train_epoch(model, optimizer, train, config.batch_size, generator))
        history.validation_rmse.append(_rmse(model, *validation))
        _check_finite(kind, epoch, history.train_rmse[-1], history.validation_rmse[-1])
        if history.validation_rmse[-1] < min(history.validation_rmse[:-1], default=math.inf):
            history.best_epoch = epoch
            best_state = {name: value.detach().clone() for name, value in model.state_dict().items()}
        bar.set_postfix(train=f"{history.train_rmse[-1]:.3f}", val=f"{history.validation_rmse[-1]:.3f}")
        if on_epoch is not None:
            on_epoch(epoch, model)
        if config.patience is not None and epoch - history.best_epoch >= config.patience:
            break
    bar.close()
    model.load_state_dict(best_state)
    model.requires_grad_(True)
    return model.eval(), history


def _freeze_spent_groups(optimizer: torch.optim.Optimizer, budgets: tuple[int, int], epoch: int) -> None:
    """Freeze (learning rate 0, no gradient) each parameter group whose epoch budget is spent."""
    for group, budget in zip(optimizer.param_groups, budgets, strict=True):
        if epoch >= budget:
            group["lr"] = 0.0
            for parameter in group["params"]:
                parameter.requires_grad_(False)


def _train_epoch(model: SequenceRegressor, optimizer: torch.optim.Optimizer,
                 data: tuple[torch.Tensor, torch.Tensor], batch_size: int, generator: torch.Generator) -> float:
    """One pass over shuffled batches; the RMSE over them (mm/h), NaN as soon as a loss is not finite."""
    model.train()
    x, y = data
    squared = 0.0
    for index in torch.randperm(y.numel(), generator=generator).split(batch_size):
        loss = F.mse_loss(model(x[index]), y[index])
        if not torch.isfinite(loss):
            return math.nan
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        squared += loss.item() * index.numel()
    return math.sqrt(squared / y.numel())


def _check_finite(kind: str, epoch: int, train_rmse: float, validation_rmse: float) -> None:
    """Raise if the epoch's training loss or validation RMSE is not finite."""
    if not (math.isfinite(train_rmse) and math.isfinite(validation_rmse)):
        raise FloatingPointError(f"{kind}: non-finite loss in epoch {epoch + 1} (train RMSE {train_rmse}, "
                                 f"validation RMSE {validation_rmse}); lower lr1/lr2 or check the features")


def _predict(model: SequenceRegressor, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Rain rates of normalised features in evaluation mode."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model(chunk) for chunk in x.split(batch_size)])


def _rmse(model: SequenceRegressor, x: torch.Tensor, y: torch.Tensor) -> float:
    """RMSE (mm/h) of the network on normalised features ``x`` against ``y``."""
    return math.sqrt(F.mse_loss(_predict(model, x), y).item())


def predict(model: SequenceRegressor, samples: SpectraSamples) -> np.ndarray:
    """Rain rate (n,) in mm/h of a network on samples (normalised with their normalisation)."""
    return _predict(model, torch.from_numpy(samples.normalised())).numpy()


def integral_baseline(dataset: xr.Dataset, samples: SpectraSamples, height: float | None = None) -> np.ndarray:
    """The drop-spectrum algorithm: ``R = 6 pi 1e-4 sum N v D^3 dD`` from one gate at the target minutes.

    Args:
        dataset: The dataset the samples came from (its ``fall_speed`` and ``diameter_width`` are used).
        samples: The target minutes.
        height: Gate height in m; None: the lowest usable gate.

    Returns:
        Rain rate (n,) in mm/h; NaN where the gate's spectrum is missing.
    """
    height = _feature_heights(dataset["drop_spectrum"], None if height is None else [height]).min()
    rows = dataset.indexes["time"].get_indexer(samples.times)
    if np.any(rows < 0):
        raise ValueError("integral_baseline: the samples hold minutes the dataset does not have")
    return gate_moments(dataset, height)[1][rows]


def save_model(path: str | Path, model: SequenceRegressor, kind: str, config: SpectraConfig,
               normalisation: Normalisation, provenance: Mapping[str, Any]) -> Path:
    """Write a trained network to a safetensors file with JSON metadata in its header.

    The metadata holds the format, ``kind``, ``config``, ``normalisation`` (with the feature heights and
    diameters), ``n_features``, ``trained_on`` (``simulated`` when ``provenance["simulated"]`` is true, else
    ``measured``), ``provenance``, ``tensors_sha256`` (of the tensors, as `satpy_prenet.bundle.tensors_sha256`) and
    ``metadata_sha256`` (of the canonical JSON of the rest of the metadata).

    Args:
        path: Target file; parent folders are created.
        model: The trained network.
        kind: Its kind.
        config: The configuration it was built and trained with.
        normalisation: The normalisation of its training split.
        provenance: JSON-serialisable description of the training (e.g. the dataset's attrs, scores).

    Returns:
        The path written.
    """
    path = Path(path)
    if kind not in NETWORKS or not isinstance(model, NETWORKS[kind]):
        raise ValueError(f"{path}: model is a {type(model).__name__}, not a network of kind {kind!r}")
    tensors = {name: value.detach().cpu().contiguous().clone() for name, value in model.state_dict().items()}
    metadata = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "kind": kind, "config": asdict(config),
                "normalisation": normalisation.to_dict(), "n_features": int(normalisation.mean.size),
                "trained_on": "simulated" if _truthy(provenance.get("simulated", 0)) else "measured",
                "provenance": dict(provenance), "tensors_sha256": tensors_sha256(tensors)}
    try:
        metadata["metadata_sha256"] = _metadata_sha256(metadata)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: the metadata cannot be stored as JSON ({error})") from error
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(handle)
    try:  # renamed into place once complete
        save_file(tensors, partial, metadata={METADATA_KEY: json.dumps(metadata, default=_plain, sort_keys=True)})
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return path


def load_model(path: str | Path) -> tuple[SequenceRegressor, dict[str, Any]]:
    """Read a network written by `save_model`, after checking the file.

    Returns:
        The network in evaluation mode and the metadata; ``Normalisation.from_dict(metadata["normalisation"])``
        gives the normalisation to pass to `make_samples`.

    Raises:
        ValueError: Naming the file, if it is missing, not a safetensors file, truncated, lacks or has malformed
            metadata, or its tensors or metadata do not match their SHA-256.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: model file not found")
    try:
        with safe_open(str(path), framework="pt") as stream:
            text = (stream.metadata() or {}).get(METADATA_KEY)
            tensors = {name: stream.get_tensor(name) for name in stream.keys()}
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{path}: not a readable safetensors file, truncated or corrupted ({error})") from error
    metadata = _checked_metadata(path, text)
    if tensors_sha256(tensors) != metadata["tensors_sha256"]:
        raise ValueError(f"{path}: the tensors do not match their SHA-256 (file altered or corrupted)")
    config = SpectraConfig(**metadata["config"])
    model = build_network(metadata["kind"], metadata["n_features"], config.hidden1, config.hidden2, config.dropout)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:
        raise ValueError(f"{path}: the tensors do not fit a {metadata['kind']} network ({error})") from error
    return model.eval(), metadata


def _checked_metadata(path: Path, text: str | None) -> dict[str, Any]:
    """The metadata of a model file after checking its format and its SHA-256."""
    if text is None:
        raise ValueError(f"{path}: no {METADATA_KEY!r} metadata; not a spectra network file")
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: malformed metadata ({error})") from error
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ValueError(f"{path}: not a {FORMAT_NAME} file")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {metadata.get('format_version')} is not {FORMAT_VERSION}")
    if metadata.get("metadata_sha256") != _metadata_sha256(metadata):
        raise ValueError(f"{path}: the metadata do not match their SHA-256 (file altered or corrupted)")
    return metadata


def _metadata_sha256(metadata: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the metadata without its ``metadata_sha256``."""
    rest = {key: value for key, value in metadata.items() if key != "metadata_sha256"}
    text = json.dumps(rest, default=_plain, sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """Python values of numpy scalars and arrays, for JSON."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _truthy(value: Any) -> bool:
    """Truth of an attribute value, also for strings such as ``"0"`` or ``"false"``."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no")
    return bool(value)
