import numpy as np
import pytest

from satpy_prenet.evaluation.metrics import regression_scores, scores


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


def test_block_csi_forgives_displacement_within_a_block_and_leaves_out_invalid_blocks():
    from satpy_prenet.evaluation.metrics import block_counts, csi_from_counts

    label, prediction = np.zeros((2, 9, 9)), np.zeros((2, 9, 9))
    label[0, 1, 1], prediction[0, 2, 2] = 1.0, 1.0  # same 4x4 block: a hit at k=4, a miss and a false alarm at k=1
    prediction[0, 6, 6] = 0.1  # false alarm (inclusive threshold) ...
    label[1, 5, 5] = np.nan  # ... but in image 1 the same block holds an invalid label
    prediction[1, 6, 6] = 5.0
    label[0, 8, 8] = 9.0  # the ninth row and column are not a whole block: ignored
    assert block_counts(prediction, label, 4).tolist() == [1, 0, 1]
    assert block_counts(prediction, label, 1).tolist() == [0, 2, 3]
    assert csi_from_counts(block_counts(prediction, label, 4)) == pytest.approx(0.5)
    assert np.isnan(csi_from_counts(np.zeros(3)))
    with pytest.raises(ValueError, match="equal images"):
        block_counts(np.zeros((4, 4)), np.zeros((4, 5)), 2)


def test_streaming_scores_equal_the_pooled_scores():
    from satpy_prenet.evaluation.metrics import StreamingScores, block_counts, csi_from_counts

    rng = np.random.default_rng(0)
    prediction = np.maximum(rng.gamma(0.5, 2.0, (6, 16, 16)) - 0.5, 0.0)
    label = np.maximum(0.6 * prediction + rng.gamma(0.5, 2.0, prediction.shape) - 0.8, 0.0)
    label[rng.random(label.shape) < 0.05] = np.nan
    prediction[rng.random(label.shape) < 0.02] = np.inf
    accumulator = StreamingScores(blocks=(4, 8))
    for start in range(0, 6, 2):
        accumulator.update(prediction[start:start + 2], label[start:start + 2])
    expected, streamed = scores(prediction, label).to_dict(), accumulator.result().to_dict()
    assert streamed["n_pixels"] == expected["n_pixels"] > 0
    for key in ("rmse", "cc", "pod", "far", "csi"):
        assert streamed[key] == pytest.approx(expected[key], rel=1e-9), key
    assert 0.2 < streamed["cc"] < 0.99
    assert accumulator.block_csi() == {f"csi{k}": csi_from_counts(block_counts(prediction, label, k)) for k in (4, 8)}


def test_streaming_scores_constant_side_and_empty():
    from satpy_prenet.evaluation.metrics import StreamingScores

    accumulator = StreamingScores()
    assert accumulator.result().n_pixels == 0 and np.isnan(accumulator.result().rmse)
    accumulator.update(np.full(5, 0.3), np.array([0.0, 1.0, 2.0, 0.05, 4.0]))
    accumulator.update(np.full(3, 0.3), np.array([0.2, 0.0, 1.0]))
    assert accumulator.result().cc == 0.0 and accumulator.result().n_pixels == 8
    with pytest.raises(ValueError, match="shape"):
        accumulator.update(np.zeros(3), np.zeros(4))


def test_regression_scores_against_hand_values():
    scores = regression_scores(np.array([1.0, 2.0, 3.0, 5.0, 2.0]), np.array([1.0, 2.0, 3.0, 4.0, np.nan]))
    assert scores.n == 4 and scores.bias == pytest.approx(0.25)
    assert scores.rmse == pytest.approx(0.5) and scores.mae == pytest.approx(0.25)
    assert scores.r2 == pytest.approx(1 - 1 / 5)
    assert scores.pearson_r == pytest.approx(np.corrcoef([1, 2, 3, 4], [1, 2, 3, 5])[0, 1])
    assert np.isnan(regression_scores(np.arange(3.0), np.ones(3)).r2)
    with pytest.raises(ValueError, match="no finite"):
        regression_scores(np.array([np.nan]), np.array([1.0]))
