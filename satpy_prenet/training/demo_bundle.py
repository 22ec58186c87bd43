"""Build the embedded demonstration bundle: a ``small`` PRE-Net retriever trained on a simulated world.

The demo bundle is fitted directly on simulated full-disc tiles (AGRI infrared -> surface rain), with the
networks' own masking (RMKD) active in training but without the multimodal teacher: it shows the product
chain working end to end and nothing more. The multimodal teacher, Swath-Distilling and Full-Disc Adaptation
are the stages of ``satpy-prenet-train``. The bundle is labelled ``demo-synthetic``.

Rebuild it with ``make bundle`` or::

    python -m satpy_prenet.training.demo_bundle --out satpy_prenet/weights/demo-small.safetensors
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from satpy_prenet.bundle import save_bundle
from satpy_prenet.channels import PAPER_BANDS
from satpy_prenet.evaluation.metrics import RAIN_THRESHOLD, scores
from satpy_prenet.model import PrecipitationRetriever
from satpy_prenet.model.config import preset
from satpy_prenet.synthetic.agri_file import quantise_bt
from satpy_prenet.synthetic.world import World

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoRecipe:
    """Everything that decides the demo bundle; recorded in its provenance."""

    seed: int = 2026
    platform: str = "FY-4A"
    first_scene: str = "2026-07-15T00:00:00"
    train_scenes: int = 8
    validation_scenes: int = 2
    hours_between_scenes: float = 3.0
    tile_stride: int = 96
    min_disc_fraction: float = 0.5
    dry_tile_fraction: float = 0.15
    epochs: int = 6
    batch_size: int = 16
    learning_rate: float = 2e-3
    preset: str = "small"


def scene_tiles(world: World, when: dt.datetime, recipe: DemoRecipe, tile: int, rng: np.random.Generator,
                keep_all: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Tiles of one simulated scene: brightness temperatures as the reader returns them, and the true rain.

    Tiles with less than ``min_disc_fraction`` of disc pixels are dropped; dry tiles (no pixel at the rain
    threshold) are kept with probability ``dry_tile_fraction`` unless ``keep_all``.
    """
    scene = world.scene(when, recipe.platform)
    bt = np.stack([quantise_bt(scene.bt[key], key) for key in PAPER_BANDS])
    rain = scene.rain_rate
    inputs, labels = [], []
    size = rain.shape[0]
    for top in range(0, size - tile + 1, recipe.tile_stride):
        for left in range(0, size - tile + 1, recipe.tile_stride):
            label = rain[top:top + tile, left:left + tile]
            if np.isfinite(label).mean() < recipe.min_disc_fraction:
                continue
            wet = np.nanmax(label) >= RAIN_THRESHOLD
            if wet or keep_all or rng.random() < recipe.dry_tile_fraction:
                inputs.append(bt[:, top:top + tile, left:left + tile])
                labels.append(label)
    return np.stack(inputs).astype(np.float32), np.stack(labels).astype(np.float32)


def simulate_dataset(recipe: DemoRecipe, tile: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Training and validation tiles from scenes ``hours_between_scenes`` apart (validation after training)."""
    world = World(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    start = dt.datetime.fromisoformat(recipe.first_scene)
    times = [start + dt.timedelta(hours=recipe.hours_between_scenes * i)
             for i in range(recipe.train_scenes + recipe.validation_scenes)]
    parts: dict[str, list] = {"train": [], "validation": []}
    for index, when in enumerate(tqdm(times, desc="simulating scenes", unit="scene")):
        split = "train" if index < recipe.train_scenes else "validation"
        parts[split].append(scene_tiles(world, when, recipe, tile, rng, keep_all=split == "validation"))
    return {split: tuple(np.concatenate(arrays) for arrays in zip(*chunks)) for split, chunks in parts.items()}


def normalise(bt: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """The retriever's own input normalisation, for training its networks directly."""
    return torch.nan_to_num((bt - mean.view(-1, 1, 1)) / std.view(-1, 1, 1), nan=0.0)


def classifier_loss(logits: torch.Tensor, rain: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of rain (>= threshold) / no rain on pixels with a label; NaN labels never count as dry."""
    target = (rain >= RAIN_THRESHOLD).long()
    target[~torch.isfinite(rain)] = -100
    return nn.functional.cross_entropy(logits, target, ignore_index=-100)


def regressor_loss(output: torch.Tensor, rain: torch.Tensor) -> torch.Tensor:
    """Mean squared error on raining pixels: the regressor gives the rate where the classifier says rain."""
    wet = torch.isfinite(rain) & (rain >= RAIN_THRESHOLD)
    if not wet.any():
        return output.sum() * 0.0
    return nn.functional.mse_loss(output[:, 0][wet], rain[wet])


def fit(network: nn.Module, loss_fn, inputs: torch.Tensor, labels: torch.Tensor, recipe: DemoRecipe,
        name: str) -> list[float]:
    """Train ``network`` with AdamW and a cosine schedule; returns the mean loss of each epoch."""
    network.train()
    optimiser = torch.optim.AdamW(network.parameters(), lr=recipe.learning_rate, weight_decay=1e-4)
    steps = recipe.epochs * int(np.ceil(len(inputs) / recipe.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=recipe.learning_rate, total_steps=steps)
    generator = torch.Generator().manual_seed(recipe.seed)
    history = []
    for epoch in range(recipe.epochs):
        order = torch.randperm(len(inputs), generator=generator)
        losses = []
        for start in tqdm(range(0, len(order), recipe.batch_size), desc=f"{name} epoch {epoch + 1}/{recipe.epochs}",
                          unit="batch", leave=False):
            batch = order[start:start + recipe.batch_size]
            loss = loss_fn(network(inputs[batch]).out, labels[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
        history.append(float(np.mean(losses)))
        LOG.info("%s epoch %d: loss %.4f", name, epoch + 1, history[-1])
    network.eval()
    return history


@torch.inference_mode()
def predict(retriever: PrecipitationRetriever, inputs: np.ndarray, batch_size: int = 16):
    """Probability and rate of the retriever for tiles ``inputs`` (N, C, H, W)."""
    outputs = [retriever(torch.from_numpy(inputs[i:i + batch_size])) for i in range(0, len(inputs), batch_size)]
    return tuple(torch.cat(parts).numpy() for parts in zip(*outputs))


def best_probability_threshold(probability: np.ndarray, rain: np.ndarray) -> float:
    """Probability threshold with the highest CSI on validation tiles (grid of 0.05 steps)."""
    candidates = np.arange(0.1, 0.91, 0.05)
    csi = [scores(np.where(probability >= p, 1.0, 0.0), rain).csi for p in candidates]
    return float(candidates[int(np.nanargmax(csi))])


def build(out: Path, recipe: DemoRecipe = DemoRecipe()) -> Path:
    """Simulate, train, validate and write the demo bundle to ``out``."""
    torch.manual_seed(recipe.seed)
    started = time.perf_counter()
    student = preset(recipe.preset, in_channels=len(PAPER_BANDS), out_channels=1)
    data = simulate_dataset(recipe, student.tile_size)
    train_x, train_y = data["train"]
    valid_x, valid_y = data["validation"]
    LOG.info("%d training and %d validation tiles", len(train_x), len(valid_x))
    mean = np.nanmean(train_x, axis=(0, 2, 3))
    std = np.nanstd(train_x, axis=(0, 2, 3))
    retriever = PrecipitationRetriever(student=student, bands=PAPER_BANDS, mean=mean.tolist(), std=std.tolist())
    inputs = normalise(torch.from_numpy(train_x), retriever.mean, retriever.std)
    labels = torch.from_numpy(train_y)
    history = {
        "classifier": fit(retriever.classifier, classifier_loss, inputs, labels, recipe, "classifier"),
        "regressor": fit(retriever.regressor, regressor_loss, inputs, labels, recipe, "regressor"),
    }
    retriever.eval()
    probability, _ = predict(retriever, valid_x)
    retriever.probability_threshold = best_probability_threshold(probability, valid_y)
    _, rate = predict(retriever, valid_x)
    metrics = scores(rate, valid_y).to_dict()
    LOG.info("validation: %s (probability threshold %.2f)", metrics, retriever.probability_threshold)
    provenance = {
        "dataset": (f"simulated world seed {recipe.seed}, {recipe.platform} full discs: {recipe.train_scenes} "
                    f"training and {recipe.validation_scenes} later validation scenes"),
        "stage": "supervised on simulated full-disc tiles (no teacher, no distillation)",
        "recipe": asdict(recipe),
        "tiles": {"train": int(len(train_x)), "validation": int(len(valid_x))},
        "loss_history": history,
        "metrics": {"validation": metrics},
        "training_seconds": round(time.perf_counter() - started, 1),
        "rebuild": "python -m satpy_prenet.training.demo_bundle --out satpy_prenet/weights/demo-small.safetensors",
    }
    return save_bundle(out, retriever, purpose="demo-synthetic", provenance=provenance)


def main(argv: list[str] | None = None) -> None:
    """Command line entry: ``python -m satpy_prenet.training.demo_bundle --out FILE``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="bundle file to write")
    parser.add_argument("--epochs", type=int, default=DemoRecipe.epochs)
    parser.add_argument("--train-scenes", type=int, default=DemoRecipe.train_scenes)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(levelname)s %(name)s] %(message)s")
    path = build(args.out, DemoRecipe(epochs=args.epochs, train_scenes=args.train_scenes))
    print(path)


if __name__ == "__main__":
    main()
