# SPDX-License-Identifier: GPL-3.0-or-later
"""The training configuration: one YAML file with the model, the dataset build and the three training stages.

Layout (see ``etc/training/paper.yaml`` and ``etc/training/small.yaml``)::

    model:     {preset, bands, regressor_pixels, threshold_grid}
    build:     mapping parsed by satpy_prenet.training.builder.BuildConfig
    simulate:  mapping for the simulated archive (seed, start, end, platform)
    teacher:   StageConfig
    distill:   StageConfig
    adapt:     StageConfig
    direct:    StageConfig (the student fitted to Full-IPR alone, the baseline of the two stages)

Every section rejects keys it does not know, so that a misspelt option fails loudly instead of being ignored.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from satpy_prenet.channels import PAPER_BANDS, bands
from satpy_prenet.model.config import PRESETS, preset, require

if TYPE_CHECKING:
    from satpy_prenet.training.builder.config import BuildConfig

#: The stages of PRE-Net's training, in the order they run.
TRAINING_STAGES = ("teacher", "distill", "adapt")
#: Every stage with a StageConfig section: PRE-Net's, and the direct fit of the student (its baseline).
CONFIG_STAGES = (*TRAINING_STAGES, "direct")
#: Network heads: the rain/no-rain classifier and the rain-rate regressor.
HEADS = ("classifier", "regressor")
OPTIMIZERS = ("rmsprop", "adamw")
MASKTUNE_MODES = ("self", "rand", "none")
#: How Self-MaskTune sets the loss from which a mask cell stays visible (masktune.py).
MASKTUNE_RULES = ("quantile", "max")
#: Whether Stage II's trained batch-norm layers follow the masked batches (``train``) or keep Stage I's (``frozen``).
BATCHNORM_STATISTICS = ("train", "frozen")
#: ``auto``: CSI at 0.1 mm/h for the classifier, RMSE on raining pixels for the regressor; ``loss``: the task loss.
VALIDATION_METRICS = ("auto", "loss")
#: Pixels the regressor's loss counts: ``rain`` (label >= 0.1 mm/h) or every ``valid`` label pixel.
REGRESSOR_PIXELS = ("rain", "valid")
#: Precisions of the exported bundle's network weights.
BUNDLE_DTYPES = ("float32", "float16")

_Section = TypeVar("_Section", bound="_Section")


class ConfigError(ValueError):
    """A training configuration that cannot be read or holds an unknown key or an invalid value."""


class _Section:
    """``from_dict`` / ``to_dict`` shared by the configuration sections."""

    @classmethod
    def from_dict(cls: type[_Section], data: Mapping[str, Any] | None, *, where: str = "") -> _Section:
        """Build the section from a mapping; missing keys take their defaults.

        Raises:
            ConfigError: If ``data`` is not a mapping, holds an unknown key or an invalid value.
        """
        where = where or cls.__name__
        data = {} if data is None else data
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
        values = {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}
        for item in fields(cls):
            if item.type == "float" and isinstance(values.get(item.name), (str, int)):
                values[item.name] = _number(values[item.name], f"{where}: {item.name}")
        try:
            return cls(**values)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{where}: {error}") from error

    def to_dict(self) -> dict[str, Any]:
        """Return the section as a JSON-serialisable dict."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


def _number(value: str | int, where: str) -> float:
    """A float from YAML text such as ``1e-6`` (which YAML 1.1 reads as a string)."""
    try:
        return float(value)
    except ValueError as error:
        raise ConfigError(f"{where}: {value!r} is not a number") from error


@dataclass(frozen=True, kw_only=True)
class ModelSection(_Section):
    """What is trained.

    Attributes:
        preset: Architecture preset of `satpy_prenet.model.config.PRESETS` (``paper`` or ``small``).
        bands: Infrared band keys (`satpy_prenet.channels`) the student takes, in channel order.
        regressor_pixels: ``rain``: the regressor's loss counts labelled pixels with rain (>= 0.1 mm/h), so it
            learns the rate given rain, which is what the product shows where the classifier says rain;
            ``valid``: every labelled pixel (the paper's "valid label pixels"; docs/training.md says why we depart).
        threshold_grid: Candidate rain-probability thresholds; export keeps the one with the highest validation CSI
            of the product (P(rain) >= threshold and regressed rate >= 0.1 mm/h).
        bundle_dtype: ``float32``, or ``float16`` for a bundle of half the size; export then calibrates and tests
            the weights exactly as the bundle holds them.
        architecture: Changes to the preset's student architecture (fields of
            `satpy_prenet.model.config.PRENetConfig`), e.g. ``{rmkd: false}`` for the ablations of the paper's
            Tables 2 and 3.
    """

    preset: str = "small"
    bands: tuple[str, ...] = PAPER_BANDS
    regressor_pixels: str = "rain"
    threshold_grid: tuple[float, ...] = tuple(round(0.05 * step, 2) for step in range(1, 20))
    bundle_dtype: str = "float32"
    architecture: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check the values."""
        bands(list(self.bands))
        fixed = sorted(set(self.architecture) & {"in_channels", "out_channels"})
        require([(isinstance(self.architecture, Mapping), "architecture must be a mapping"),
                 (not fixed, f"architecture cannot set {', '.join(fixed)} (the bands and the head set them)")])
        replace(preset(self.preset, in_channels=1, out_channels=1), **self.architecture)
        require([(self.preset in PRESETS, f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}"),
                (len(set(self.bands)) == len(self.bands) > 0, "bands must be a non-empty list without repeats"),
                (self.regressor_pixels in REGRESSOR_PIXELS,
                 f"regressor_pixels must be one of {', '.join(REGRESSOR_PIXELS)}"),
                (len(self.threshold_grid) > 0 and all(0.0 < p < 1.0 for p in self.threshold_grid),
                 "threshold_grid must hold probabilities strictly between 0 and 1"),
                (self.bundle_dtype in BUNDLE_DTYPES, f"bundle_dtype must be one of {', '.join(BUNDLE_DTYPES)}")])


@dataclass(frozen=True, kw_only=True)
class StageConfig(_Section):
    """Hyper-parameters of one training stage (the teacher ignores the distillation and adaptation keys).

    Attributes:
        epochs: Number of epochs; raise it and ``--resume`` to train further.
        batch_size: Global batch size (split evenly over the processes of a distributed run).
        optimizer: ``rmsprop`` (the paper's) or ``adamw``.
        lr: Learning rate.
        lr_halving_epochs: Halve the learning rate every this many epochs (paper: 30); 0 keeps it constant.
        weight_decay: Weight decay of the optimizer.
        momentum: Momentum of RMSprop (the reference release: 0.999); AdamW ignores it.
        grad_clip: Clip the gradients' global L2 norm to this value before each step (the reference: 1.0); 0 = off.
        lambda_kd: Weight of the feature-distillation loss (Stage I).
        gamma_rec: Weight of the reconstruction loss (Stage I).
        lambda_response: Weight of the response distillation (Stage I): the student's output against the teacher's
            on every pixel of the footprint, labelled or not. Not in the paper, whose default 0 turns it off.
        kd_temperature: Softmax temperature of the feature and response distillation.
        kd_scale_weights: Weights of the distillation at strides 2, 4 and 8.
        masktune: ``self`` (Self-MaskTune), ``rand`` (Rand-MaskTune) or ``none`` (Stage II).
        warmup_epochs: Epochs K without a mask before MaskTune starts (Stage II).
        masktune_rule: ``quantile``: a mask cell stays visible when its mean task loss reaches the rho quantile of
            the sample's cells (so a fraction 1 - rho is kept); ``max``: when it reaches rho times the sample's
            largest cell loss (the paper's eq. 8-9 read literally; Stage II).
        rho: The quantile or the fraction of the maximum of ``masktune_rule`` (Stage II).
        batchnorm_statistics: ``train``: the batch-norm layers of the trained decoder and head renormalise with the
            (masked) batches and update their running statistics; ``frozen``: they keep the Stage I statistics, which
            were gathered without MaskTune's masks, as at inference (Stage II).
        lora_rank: Rank of the LoRA adapters (Stage II).
        lora_alpha: LoRA scaling numerator (the update is scaled by lora_alpha / lora_rank).
        reinit_decoder: Re-initialise the Stage I decoder and head before Stage II instead of carrying them over.
        num_workers: DataLoader worker processes per training process.
        amp: Mixed precision on CUDA (bfloat16 where supported, else float16 with a gradient scaler); no effect on
            the CPU.
        seed: Seed of the initial weights, the data order and the random masks.
        max_steps_per_epoch: Stop every epoch (training and validation) after this many batches (smoke runs).
        validation_metric: ``auto`` (classifier: CSI at 0.1 mm/h, higher is better; regressor: RMSE on raining
            pixels, lower is better) or ``loss`` (validation task loss); chooses ``best.pt``.
    """

    epochs: int = 1
    batch_size: int = 32
    optimizer: str = "rmsprop"
    lr: float = 1e-6
    lr_halving_epochs: int = 30
    weight_decay: float = 0.0
    momentum: float = 0.0
    grad_clip: float = 0.0
    lambda_kd: float = 0.2
    gamma_rec: float = 50.0
    lambda_response: float = 0.0
    kd_temperature: float = 3.0
    kd_scale_weights: tuple[float, ...] = (1.0, 2.0, 4.0)
    masktune: str = "self"
    warmup_epochs: int = 1
    masktune_rule: str = "quantile"
    rho: float = 0.5
    batchnorm_statistics: str = "train"
    lora_rank: int = 1
    lora_alpha: float = 1.0
    reinit_decoder: bool = False
    num_workers: int = 0
    amp: bool = True
    seed: int = 0
    max_steps_per_epoch: int | None = None
    validation_metric: str = "auto"

    def __post_init__(self) -> None:
        """Check the values."""
        require([(self.epochs >= 1, "epochs must be at least 1"),
                (self.batch_size >= 1, "batch_size must be at least 1"),
                (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
                (self.lr > 0, "lr must be positive"),
                (self.lr_halving_epochs >= 0, "lr_halving_epochs must be 0 (constant) or positive"),
                (len(self.kd_scale_weights) == 3, "kd_scale_weights needs 3 entries (strides 2, 4, 8)"),
                (self.kd_temperature > 0, "kd_temperature must be positive"),
                (self.masktune in MASKTUNE_MODES, f"masktune must be one of {', '.join(MASKTUNE_MODES)}"),
                (self.warmup_epochs >= 0, "warmup_epochs must not be negative"),
                (self.masktune_rule in MASKTUNE_RULES, f"masktune_rule must be one of {', '.join(MASKTUNE_RULES)}"),
                (0.0 <= self.rho <= 1.0, "rho must lie in [0, 1]"),
                (self.batchnorm_statistics in BATCHNORM_STATISTICS,
                 f"batchnorm_statistics must be one of {', '.join(BATCHNORM_STATISTICS)}"),
                (self.lora_rank >= 1, "lora_rank must be at least 1"),
                (self.lora_alpha > 0, "lora_alpha must be positive"),
                (self.weight_decay >= 0, "weight_decay must not be negative"),
                (0.0 <= self.momentum < 1.0, "momentum must lie in [0, 1)"),
                (self.grad_clip >= 0, "grad_clip must not be negative (0 = off)"),
                (self.lambda_kd >= 0, "lambda_kd must not be negative"),
                (self.gamma_rec >= 0, "gamma_rec must not be negative"),
                (self.lambda_response >= 0, "lambda_response must not be negative"),
                (self.num_workers >= 0, "num_workers must not be negative"),
                (self.max_steps_per_epoch is None or self.max_steps_per_epoch >= 1,
                 "max_steps_per_epoch must be at least 1 (or absent)"),
                (self.validation_metric in VALIDATION_METRICS,
                 f"validation_metric must be one of {', '.join(VALIDATION_METRICS)}")])


#: Keys of the ``simulate`` section, all required when the section is given.
SIMULATE_KEYS = ("seed", "start", "end", "platform")


def parse_time(value: Any, where: str) -> dt.datetime:
    """A naive UTC datetime from an ISO string (or a datetime, as YAML may give)."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError as error:
        raise ConfigError(f"{where}: {value!r} is not an ISO date and time") from error


@dataclass(frozen=True)
class SimulateSettings:
    """The ``simulate`` section, parsed: the world's seed, the archive's time span and the satellite."""

    seed: int
    start: dt.datetime
    end: dt.datetime
    platform: str

    @classmethod
    def from_dict(cls, section: Mapping[str, Any], where: str) -> SimulateSettings:
        """Parse and check the section.

        Raises:
            ConfigError: If a key is missing or unknown, a time is not ISO, the span is empty or the seed no integer.
        """
        if set(section) != set(SIMULATE_KEYS):
            raise ConfigError(f"{where}: needs exactly the keys {', '.join(SIMULATE_KEYS)}, got {', '.join(section)}")
        start, end = parse_time(section["start"], where), parse_time(section["end"], where)
        if end <= start:
            raise ConfigError(f"{where}: end {end:%Y-%m-%dT%H:%M} is not after start {start:%Y-%m-%dT%H:%M}")
        if type(section["seed"]) is not int:
            raise ConfigError(f"{where}: seed must be an integer, got {section['seed']!r}")
        return cls(seed=section["seed"], start=start, end=end, platform=str(section["platform"]))


def parse_build(section: Mapping[str, Any], model: ModelSection, where: str) -> BuildConfig:
    """The ``build`` section as the builder's ``BuildConfig``, with the model's bands unless it names its own.

    Raises:
        ConfigError: On an unknown key or an invalid value.
    """
    # imported here: the builder (xarray, satpy readers) is only needed where a build section is parsed
    from satpy_prenet.training.builder.config import BuildConfig

    try:
        return BuildConfig.from_dict({"bands": list(model.bands), **section})
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from error


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """A whole training configuration.

    Attributes:
        model: What is trained.
        build: The dataset builder's section, parsed by ``satpy_prenet.training.builder.BuildConfig.from_dict``.
        simulate: The simulated archive's section (seed, start, end, platform), for the builder.
        teacher: Multimodal teacher training.
        distill: Stage I, Swath-Distilling.
        adapt: Stage II, Full-Disc Adaptation.
        direct: The direct fit of the student on Full-IPR (baseline).
        source: File the configuration was read from (None when built in memory).
    """

    model: ModelSection = field(default_factory=ModelSection)
    build: dict[str, Any] = field(default_factory=dict)
    simulate: dict[str, Any] = field(default_factory=dict)
    teacher: StageConfig = field(default_factory=StageConfig)
    distill: StageConfig = field(default_factory=StageConfig)
    adapt: StageConfig = field(default_factory=StageConfig)
    direct: StageConfig = field(default_factory=StageConfig)
    source: Path | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, source: str | os.PathLike | None = None) -> TrainingConfig:
        """Build the configuration from a mapping, e.g. a parsed YAML file.

        Raises:
            ConfigError: On an unknown section or key, or an invalid value; the message names the file.
        """
        where = str(source) if source else "training config"
        data = {} if data is None else data
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
        sections = {"model", "build", "simulate", *CONFIG_STAGES}
        unknown = sorted(set(data) - sections)
        if unknown:
            raise ConfigError(f"{where}: unknown section(s) {', '.join(unknown)}; known: {', '.join(sorted(sections))}")
        for raw in ("build", "simulate"):
            if not isinstance(data.get(raw) or {}, Mapping):
                raise ConfigError(f"{where}: section {raw!r} must be a mapping")
        model = ModelSection.from_dict(data.get("model"), where=f"{where}: model")
        build, simulate = dict(data.get("build") or {}), dict(data.get("simulate") or {})
        parse_build(build, model, f"{where}: build")  # checked now, not after hours of simulation
        if simulate:
            SimulateSettings.from_dict(simulate, f"{where}: simulate")
        return cls(
            model=model,
            build=build,
            simulate=simulate,
            **{stage: StageConfig.from_dict(data.get(stage), where=f"{where}: {stage}") for stage in CONFIG_STAGES},
            source=Path(source) if source else None,
        )

    def stage(self, name: str) -> StageConfig:
        """Return the StageConfig of a training stage by name."""
        if name not in CONFIG_STAGES:
            raise ConfigError(f"unknown training stage {name!r}; expected one of {', '.join(CONFIG_STAGES)}")
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a JSON-serialisable dict (for checkpoints and bundle provenance)."""
        return {"model": self.model.to_dict(), "build": dict(self.build), "simulate": dict(self.simulate),
                **{stage: self.stage(stage).to_dict() for stage in CONFIG_STAGES}}


def load_config(path: str | os.PathLike) -> TrainingConfig:
    """Read a training configuration from a YAML file.

    Raises:
        ConfigError: If the file is missing, not YAML, or its content is invalid (the message names the file).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the training config ({error.strerror or error})") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from error
    return TrainingConfig.from_dict(data, source=path)
