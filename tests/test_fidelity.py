import math

import numpy as np
import pytest

from evalsuite.metrics.fidelity import image_gate, psnr_db, ssim


def test_psnr_hand_computed():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    assert psnr_db(a, b) == math.inf
    b[:] = 1  # MSE = 1 -> 20*log10(255) = 48.1308 dB
    assert psnr_db(a, b) == pytest.approx(48.130803608679, abs=1e-9)
    b[:] = 0
    b[0, 0, 0] = 255  # MSE = 255^2 / 192 -> 10*log10(192)
    assert psnr_db(a, b) == pytest.approx(10 * math.log10(192), abs=1e-9)


def test_ssim_bounds_and_order():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    slight = np.clip(a.astype(int) + rng.integers(-3, 4, a.shape), 0, 255).astype(np.uint8)
    other = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    s1, s2 = ssim(a, slight), ssim(a, other)
    assert 0.9 < s1 < 1.0 and abs(s2) < 0.05 and s1 > s2
    with pytest.raises(ValueError):
        ssim(a, a[:32])


def test_blank_gate():
    assert "blank" in image_gate(np.zeros((16, 16, 3), np.uint8))
    assert "blank" in image_gate(np.full((16, 16, 3), 255, np.uint8))
    flat = np.full((16, 16, 3), 120, np.uint8)
    flat[0, 0, 0] = 121
    assert "blank" in image_gate(flat)
    rng = np.random.default_rng(1)
    assert image_gate(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) is None
