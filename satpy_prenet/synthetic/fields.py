# SPDX-License-Identifier: GPL-3.0-or-later
"""Seeded power-law random fields: periodic textures made by FFT and sampled at global pixel indices.

Every field here is a whole periodic texture computed once per seed, and a scene samples it at
*global* pixel indices (plus an offset). A window of the disc therefore gets exactly the values of the
same pixels in a full-disc simulation, whatever the window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

#: Side of the periodic pixel-space textures (pixels). A power of two: fast FFT, cheap wrap-around.
TEXTURE_SIZE = 1024


def rng_for(*key: int) -> np.random.Generator:
    """Return a generator seeded by a tuple of non-negative integers (order matters)."""
    return np.random.default_rng([int(k) for k in key])


def powerlaw_field(
    rng: np.random.Generator,
    shape: tuple[int, int],
    slope: float = 3.0,
    *,
    min_scale: float = 2.0,
    max_scale: float | None = None,
) -> np.ndarray:
    """Periodic Gaussian random field with a power-law spectrum, zero mean and unit variance.

    The radially averaged power spectral density falls as ``k ** -slope`` (the convention of radar
    rainfall studies, e.g. pysteps' ``rapsd``) between the wavelengths ``min_scale`` and
    ``max_scale`` (in grid cells), with smooth roll-offs outside that band.

    Args:
        rng: Source of the white noise.
        shape: ``(rows, cols)`` of the periodic field.
        slope: Spectral slope (positive number; 3 gives the ``k**-3`` spectrum of rain fields).
        min_scale: Shortest wavelength kept (cells).
        max_scale: Longest wavelength kept (cells); ``None`` keeps everything down to the lowest
            non-zero frequency.

    Returns:
        float32 array of ``shape``.
    """
    rows, cols = shape
    white = rng.standard_normal(shape, dtype=np.float32)
    spectrum = np.fft.rfft2(white)
    ky = np.fft.fftfreq(rows).astype(np.float32)[:, None]
    kx = np.fft.rfftfreq(cols).astype(np.float32)[None, :]
    k = np.sqrt(kx * kx + ky * ky)
    k[0, 0] = 1.0
    amplitude = k ** np.float32(-slope / 2.0)
    amplitude *= np.exp(-((k * np.float32(min_scale / 2.0)) ** 2))
    if max_scale is not None:
        amplitude *= -np.expm1(-((k * np.float32(max_scale)) ** 2))
    amplitude[0, 0] = 0.0
    field = np.fft.irfft2(spectrum * amplitude, s=shape).astype(np.float32)
    field -= field.mean(dtype=np.float64)
    field /= np.float32(field.std(dtype=np.float64))
    return field


def _wrapped_slices(texture_len: int, start: int, count: int) -> list[slice]:
    """Consecutive indices ``start .. start + count - 1`` of a periodic axis, as a list of slices."""
    pieces = []
    position = start % texture_len
    while count > 0:
        length = min(count, texture_len - position)
        pieces.append(slice(position, position + length))
        count -= length
        position = 0
    return pieces


def periodic_take(texture: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample a periodic texture at consecutive integer ``rows`` x ``cols`` (wrapping around).

    Returns a view when neither range wraps around, else a copy assembled from slices.
    """
    rows = np.asarray(rows)
    cols = np.asarray(cols)
    if rows.size == 0 or cols.size == 0:
        return np.zeros((rows.size, cols.size), texture.dtype)
    if rows[-1] - rows[0] != rows.size - 1 or cols[-1] - cols[0] != cols.size - 1:
        raise ValueError("periodic_take needs consecutive, increasing indices")
    row_slices = _wrapped_slices(texture.shape[0], int(rows[0]), rows.size)
    col_slices = _wrapped_slices(texture.shape[1], int(cols[0]), cols.size)
    if len(row_slices) == 1 and len(col_slices) == 1:
        return texture[row_slices[0], col_slices[0]]
    band = np.concatenate([texture[:, piece] for piece in col_slices], axis=1)
    return np.concatenate([band[piece] for piece in row_slices], axis=0)


@dataclass(frozen=True)
class EvolvingTexture:
    """Three independent realisations of one power-law texture, blended to evolve in time.

    At time ``t`` the texture is ``a T1 + b T2 + c T3`` with ``(a, b, c)`` a point moving on the unit
    sphere at two incommensurate angular speeds, so the variance stays one and the pattern decorrelates
    after about ``timescale`` seconds without ever repeating exactly.
    """

    realisations: tuple[np.ndarray, np.ndarray, np.ndarray]
    timescale: float

    @classmethod
    def make(cls, rng: np.random.Generator, *, size: int, slope: float, min_scale: float,
             max_scale: float | None, timescale: float) -> EvolvingTexture:
        """Draw the three realisations."""
        fields = tuple(
            powerlaw_field(rng, (size, size), slope, min_scale=min_scale, max_scale=max_scale) for _ in range(3)
        )
        return cls(fields, timescale)  # type: ignore[arg-type]

    def weights(self, t: float, phase: float = 0.0) -> tuple[float, float, float]:
        """Blending weights at time ``t`` (seconds) for a pattern of the given phase (radians)."""
        first = t / self.timescale + phase
        second = t / (self.timescale * 1.618034) + 2.3 * phase
        return (float(np.cos(first)), float(np.sin(first) * np.cos(second)), float(np.sin(first) * np.sin(second)))

    def sample(self, rows: np.ndarray, cols: np.ndarray, t: float, phase: float = 0.0) -> np.ndarray:
        """Texture at integer ``rows`` x ``cols`` and time ``t`` (float32, unit variance)."""
        out: np.ndarray | None = None
        for weight, field in zip(self.weights(t, phase), self.realisations, strict=True):
            if abs(weight) < 1e-6:
                continue
            term = periodic_take(field, rows, cols)
            if out is None:
                out = term * np.float32(weight)
            else:
                out += term * np.float32(weight)
        assert out is not None
        return out


def radial_spectrum(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectral density of a 2-D field (for checking spectral slopes).

    Returns:
        ``(k, psd)`` with ``k`` in cycles per cell, for the integer-radius bins 1 .. min(shape)/2.
    """
    rows, cols = field.shape
    power = np.abs(np.fft.fft2(field - field.mean())) ** 2
    ky = np.fft.fftfreq(rows)[:, None] * rows
    kx = np.fft.fftfreq(cols)[None, :] * cols
    radius = np.rint(np.sqrt(kx**2 + ky**2)).astype(int)
    nbins = min(rows, cols) // 2
    sums = np.bincount(radius.ravel(), weights=power.ravel(), minlength=nbins + 1)
    counts = np.bincount(radius.ravel(), minlength=nbins + 1)
    bins = np.arange(1, nbins)
    return bins / min(rows, cols), sums[bins] / counts[bins]
