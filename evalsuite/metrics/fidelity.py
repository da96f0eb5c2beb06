"""Fidelity of a candidate image to its baseline (same prompt and seed), and hard gates.

Pure functions on uint8 RGB arrays (H, W, 3):
- psnr_db: 10*log10(255^2 / MSE); +inf for identical images (report it as such, never as a number).
- ssim: Wang et al. 2004 structural similarity with their settings (11x11-equivalent Gaussian window,
  sigma 1.5, K1=0.01, K2=0.03, data range 255, population covariance), averaged over RGB channels;
  computed by scikit-image's implementation.
- image_gate: the hard gates of the paired comparison: an image is "blank" when its pixel standard
  deviation is below BLANK_STD (all black, all white, one flat colour: the known FP8/NaN failure,
  where NaN latents decode to a constant image).
Images of different sizes cannot be compared pixel-wise: the functions raise ValueError.
"""

from __future__ import annotations

import math

import numpy as np

BLANK_STD = 1.0  # uint8 levels; a real photo or even a noise image is far above this


def _check(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape} vs {b.shape}")


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    _check(a, b)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    if mse == 0:
        return math.inf
    return float(10.0 * math.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    _check(a, b)
    if min(a.shape[0], a.shape[1]) < 7:
        raise ValueError(f"images too small for SSIM: {a.shape}")
    return float(structural_similarity(
        a, b, channel_axis=2 if a.ndim == 3 else None, data_range=255, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False,
    ))


def image_gate(img: np.ndarray) -> str | None:
    """None when the image passes the hard gates, else the reason."""
    if img.size == 0:
        return "empty image"
    std = float(img.astype(np.float64).std())
    if std < BLANK_STD:
        return f"blank image (pixel std {std:.2f} < {BLANK_STD}; mean level {float(img.mean()):.0f})"
    return None
