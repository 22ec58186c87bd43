# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the embedded demonstration bundle: a ``small`` PRE-Net retriever trained on a simulated world.

The demo bundle is fitted directly on simulated full-disc crops (AGRI infrared -> surface rain), with the
networks' own masking (RMKD) active in training but without the multimodal teacher: it shows the product
chain working end to end and nothing more. The multimodal teacher, Swath-Distilling and Full-Disc Adaptation
are separate training stages, not part of this recipe. The bundle is labelled ``demo-synthetic``.

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
from satpy_prenet.inference import TiledRetrieval
from satpy_prenet.model import PrecipitationRetriever
from satpy_prenet.model.config import preset
from satpy_prenet.synthetic.calibration import quantise_bt
from satpy_prenet.synthetic.world import World

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoRecipe:
    """Everything that decides the demo bundle; recorded in its provenance."""

    seed: int = 2026
    platform: str = "FY-4A"
    first_scene: str = "2026-07-15T00:00:00"
    train_scenes: int = 8
    hours_between_scenes: float = 3.0
    crop: int = 64
    crops_per_scene: int = 400
    min_disc_fraction: float = 0.5
    dry_crop_fraction: float = 0.15
    epochs: int = 6
    batch_size: int = 32
    learning_rate: float = 2e-3
    preset: str = "small"


def scene_inputs(world: World, when: dt.datetime, platform: str) -> tuple[np.ndarray, np.ndarray]:
    """Brightness temperatures (C, H, W) exactly as satpy's reader returns them, and the true rain (H, W)."""
    scene = world.scene(when, platform)
    bt = np.stack([quantise_bt(scene.bt[key], key, platform) for key in PAPER_BANDS])
    return bt.astype(np.float32), scene.rain_rate.astype(np.float32)


def random_crops(bt: np.ndarray, rain: np.ndarray, recipe: DemoRecipe,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``crops_per_scene`` square crops mostly on the disc; dry crops kept with probability ``dry_crop_fraction``."""
    inputs, labels = [], []
    size, crop = rain.shape[0], recipe.crop
    while len(inputs) < recipe.crops_per_scene:
        top, left = rng.integers(0, size - crop, size=2)
        label = rain[top:top + crop, left:left + crop]
        if np.isfinite(label).mean() < recipe.min_disc_fraction:
            continue
        if np.nanmax(label) >= RAIN_THRESHOLD or rng.random() < recipe.dry_crop_fraction:
            inputs.append(bt[:, top:top + crop, left:left + crop])
            labels.append(label)
    return np.stack(inputs), np.stack(labels)


def simulate_dataset(recipe: DemoRecipe) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Training crops from ``train_scenes`` full discs, then one validation and one test full disc (later times)."""
    world = World(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    start = dt.datetime.fromisoformat(recipe.first_scene)
    times = [start + dt.timedelta(hours=recipe.hours_between_scenes * i) for i in range(recipe.train_scenes + 2)]
    crops = []
    for when in tqdm(times[:-2], desc="simulating training scenes", unit="scene"):
        crops.append(random_crops(*scene_inputs(world, when, recipe.platform), recipe, rng))
    return {"train": tuple(np.concatenate(arrays) for arrays in zip(*crops, strict=True)),
            "validation": scene_inputs(world, times[-2], recipe.platform),
            "test": scene_inputs(world, times[-1], recipe.platform)}


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


def best_probability_threshold(probability: np.ndarray, rain: np.ndarray) -> float:
    """Probability threshold with the highest CSI on the validation disc (grid of 0.05 steps)."""
    candidates = np.arange(0.1, 0.91, 0.05)
    csi = [scores(np.where(probability >= p, 1.0, 0.0), rain).csi for p in candidates]
    return round(float(candidates[int(np.nanargmax(csi))]), 2)


def build(out: Path, recipe: DemoRecipe = DemoRecipe()) -> Path:
    """Simulate, train, validate and write the demo bundle to ``out``."""
    torch.manual_seed(recipe.seed)
    started = time.perf_counter()
    student = preset(recipe.preset, in_channels=len(PAPER_BANDS), out_channels=1)
    data = simulate_dataset(recipe)
    train_x, train_y = data["train"]
    LOG.info("%d training crops of %d x %d pixels", len(train_x), recipe.crop, recipe.crop)
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
    for network in (retriever.classifier, retriever.regressor):
        network.half().float()  # score the weights exactly as the float16 bundle will hold them
    engine = TiledRetrieval(retriever, tile_size=student.tile_size, device="cpu")
    probability, _ = engine.predict(data["validation"][0])
    retriever.probability_threshold = best_probability_threshold(probability, data["validation"][1])
    _, rate = engine.predict(data["test"][0])
    metrics = scores(rate, data["test"][1]).to_dict()
    LOG.info("test disc: %s (probability threshold %.2f)", metrics, retriever.probability_threshold)
    provenance = {
        "dataset": (f"simulated world seed {recipe.seed}: {recipe.train_scenes} {recipe.platform} full discs for "
                    "training, the next for the probability threshold, the one after for the test metrics"),
        "stage": "supervised on simulated full-disc crops (no teacher, no distillation)",
        "recipe": asdict(recipe),
        "loss_history": history,
        "metrics": {"test_full_disc": metrics},
        "training_seconds": round(time.perf_counter() - started, 1),
        "rebuild": "python -m satpy_prenet.training.demo_bundle --out satpy_prenet/weights/demo-small.safetensors",
    }
    return save_bundle(out, retriever, purpose="demo-synthetic", provenance=provenance, half_precision=True)


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
