import numpy as np
import pytest

from satpy_prenet.evaluation.metrics import scores


def test_threshold_is_inclusive():
    label = np.array([0.1, 0.0, 0.0999, 1.0])
    prediction = np.array([0.1, 0.1, 0.0, 0.0])
    result = scores(prediction, label)
    # hit at 0.1/0.1, false alarm at 0.1/0.0, 0.0999 is no rain, miss at 0/1.0
    assert result.pod == pytest.approx(0.5)
    assert result.far == pytest.approx(0.5)
    assert result.csi == pytest.approx(1 / 3)


def test_invalid_pixels_left_out_and_constant_cc_is_zero():
    label = np.array([1.0, np.nan, 2.0, 3.0])
    prediction = np.array([0.5, 9.0, 0.5, np.nan])
    result = scores(prediction, label)
    assert result.n_pixels == 2
    assert result.cc == 0.0
    assert result.rmse == pytest.approx(np.sqrt((0.25 + 2.25) / 2))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        scores(np.zeros(3), np.zeros(4))
