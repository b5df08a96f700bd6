"""NIQE with a pristine model fitted on the test's own images."""

import cv2
import numpy as np
import pytest

from burstsr.naturalness import Pristine, fit_pristine, niqe, patch_features

from conftest import texture


def _photo(seed: int) -> np.ndarray:
    """Edges and texture at several scales, like a photograph's."""
    rng = np.random.default_rng(seed)
    img = texture(288, 288, seed=seed)
    for _ in range(12):  # a few sharp-edged shapes
        x, y, r = rng.integers(0, 288, 3) // [1, 1, 4]
        cv2.circle(img, (int(x), int(y)), int(r) + 8, rng.random(3).tolist(), -1)
    return cv2.GaussianBlur(img, (0, 0), 0.6)


def test_blur_and_noise_score_less_natural(tmp_path):
    pristine = fit_pristine([_photo(s) for s in range(6)])
    assert pristine.mean.shape == (36,) and pristine.cov.shape == (36, 36)
    test = _photo(10)
    sharp = niqe(test, pristine)
    blurred = niqe(cv2.GaussianBlur(test, (0, 0), 2.5), pristine)
    noisy = niqe(
        np.clip(test + np.random.default_rng(1).normal(0, 0.08, test.shape), 0, 1), pristine
    )
    assert sharp < blurred and sharp < noisy, (sharp, blurred, noisy)
    pristine.save(tmp_path / "p.npz")
    again = Pristine.load(tmp_path / "p.npz")
    assert niqe(test, again) == pytest.approx(sharp)


def test_features_and_errors():
    features, sharpness = patch_features(_photo(3))
    assert features.shape == (9, 36) and sharpness.shape == (9,)
    assert np.isfinite(features).all()
    with pytest.raises(ValueError, match="96x96"):
        patch_features(np.zeros((50, 50, 3)))
