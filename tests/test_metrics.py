import json
import operator
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from satpy_prenet.evaluation.metrics import (
    FSS_SCALES,
    PAPER_COLUMNS,
    RATE_CLASSES,
    THRESHOLDS,
    StreamingScores,
    block_counts,
    csi_from_counts,
    fss_from_sums,
    fss_sums,
    regression_scores,
    scores,
)

DIMS = ("image", "y", "x")


def test_threshold_is_inclusive():
    label = np.array([0.1, 0.0, 0.0999, 1.0])
    prediction = np.array([0.1, 0.1, 0.0, 0.0])
    result = scores(prediction, label)
    # hit at 0.1/0.1, false alarm at 0.1/0.0, 0.0999 is no rain, miss at 0/1.0
    assert result.pod == pytest.approx(0.5)
    assert result.far == pytest.approx(0.5)
    assert result.csi == pytest.approx(1 / 3)
    assert result.hss == 0.0  # one hit, one miss, one false alarm, one correct negative: no skill over chance


def test_invalid_pixels_left_out_and_constant_cc_is_zero():
    label = np.array([1.0, np.nan, 2.0, 3.0])
    prediction = np.array([0.5, 9.0, 0.5, np.nan])
    result = scores(prediction, label)
    assert result.n_pixels == 2
    assert result.cc == 0.0
    assert result.rmse == pytest.approx(np.sqrt((0.25 + 2.25) / 2))
    assert result.mae == pytest.approx(1.0) and result.bias == pytest.approx(-1.0)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        scores(np.zeros(3), np.zeros(4))


def test_block_csi_forgives_displacement_within_a_block_and_leaves_out_invalid_blocks():
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
    accumulator = StreamingScores()  # pixel samples, not images
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


# The extended metric set, cross-checked against the `scores` package and by hand.


def rain_fields(seed=1, shape=(3, 40, 40), invalid=0.05):
    """Rain-like rates in steps of 0.1 mm/h (many on a threshold or class edge): half the pixels dry, gamma-distributed
    rain with a tail beyond 20 mm/h; NaN and inf."""
    rng = np.random.default_rng(seed)
    label = np.where(rng.random(shape) < 0.5, 0.0, rng.gamma(0.7, 6.0, shape)).round(1)
    prediction = np.maximum(0.7 * label + rng.normal(0.0, 2.0, shape), 0.0).round(1)
    prediction[rng.random(shape) < 0.1] = 0.0
    label[rng.random(shape) < invalid] = np.nan
    prediction[rng.random(shape) < invalid / 2] = np.inf
    return prediction, label


def as_missing(values):
    """DataArray with non-finite values as NaN: `scores` takes inf for a rate and NaN for missing."""
    return xr.DataArray(np.where(np.isfinite(values), values, np.nan), dims=DIMS[-values.ndim:])


def accumulate(prediction, label, batch=None, **kwargs):
    accumulator, step = StreamingScores(blocks=(4, 8), **{"fss_scales": FSS_SCALES, **kwargs}), batch or len(label)
    for start in range(0, len(label), step):
        accumulator.update(prediction[start:start + step], label[start:start + step])
    return accumulator


def tables(accumulator):
    return [accumulator.table_row(), accumulator.by_threshold(), accumulator.by_rate_class()]


def reference_categorical(fcst, obs, threshold):
    categorical = pytest.importorskip("scores.categorical")  # `scores` counts rain with the operator given: >=
    manager = categorical.ThresholdEventOperator(default_op_fn=operator.ge).make_contingency_manager(
        fcst, obs, event_threshold=threshold)
    return {"pod": manager.probability_of_detection(), "far": manager.false_alarm_ratio(),
            "csi": manager.threat_score(), "hss": manager.heidke_skill_score()}


def test_pixel_scores_by_threshold_match_the_scores_package():
    prediction, label = rain_fields()
    rows = accumulate(prediction, label, fss_scales=()).by_threshold()
    assert [row["threshold"] for row in rows] == list(THRESHOLDS)
    fcst, obs = as_missing(prediction), as_missing(label)
    for row in rows:
        expected = reference_categorical(fcst, obs, row["threshold"])
        assert 0 < row["csi"] < 1, row
        for key, value in expected.items():
            assert row[key] == pytest.approx(float(value), rel=1e-12), (row["threshold"], key)


def test_block_csi_by_threshold_matches_the_scores_package_on_block_maxima():
    prediction, label = rain_fields(shape=(3, 42, 37), invalid=0.003)  # edges beyond whole blocks are trimmed
    rows = accumulate(prediction, label, fss_scales=()).by_threshold()
    for block in (4, 8):
        # a NaN anywhere in a block makes its maximum NaN: the block is missing for `scores`
        fcst, obs = (as_missing(values).coarsen(y=block, x=block, boundary="trim").reduce(np.max)
                     for values in (prediction, label))
        assert 0 < int(np.isnan(obs).sum()) < obs.size / 4
        for row in rows:
            assert row[f"csi{block}"] == pytest.approx(float(reference_categorical(fcst, obs, row["threshold"])["csi"]),
                                                       rel=1e-12), (block, row["threshold"])


def test_continuous_scores_overall_and_by_rate_class_match_the_scores_package():
    continuous = pytest.importorskip("scores.continuous")
    prediction, label = rain_fields()
    accumulator = accumulate(prediction, label, fss_scales=())
    fcst, obs = as_missing(prediction), as_missing(label)
    classes = [((lower, upper), obs.where((obs >= lower) & (obs < upper))) for lower, upper in RATE_CLASSES]
    rows = accumulator.by_rate_class() + [{"n": accumulator.result().n_pixels, **accumulator.result().to_dict()}]
    for row, (bounds, reference) in zip(rows, [*classes, ((None, None), obs)], strict=True):
        assert (row.get("lower"), row.get("upper")) == bounds
        assert row["n"] == int(np.isfinite(fcst - reference).sum()) >= 30, bounds
        assert row["rmse"] == pytest.approx(float(continuous.rmse(fcst, reference)), rel=1e-10), bounds
        assert row["mae"] == pytest.approx(float(continuous.mae(fcst, reference)), rel=1e-10), bounds
        assert row["bias"] == pytest.approx(float(continuous.additive_bias(fcst, reference)), rel=1e-10), bounds
        assert row["cc"] == pytest.approx(float(continuous.correlation.pearsonr(fcst, reference)), rel=1e-8), bounds
    assert rows[-1]["bias"] < 0  # the prediction is 0.7 x the label: the checks above can tell signs apart


def reference_fss(prediction, label, threshold, size):
    """Brute force: explicit window sums over a zero-padded copy, fractions among the window's valid pixels."""
    valid = np.isfinite(prediction) & np.isfinite(label)
    half, (rows, cols) = size // 2, label.shape[-2:]

    def window_counts(mask):
        padded = np.pad(mask.astype(np.int64), ((0, 0), (half, half), (half, half)))
        return sum(padded[:, dy:dy + rows, dx:dx + cols] for dy in range(size) for dx in range(size))[valid]

    coverage = window_counts(valid)
    pred = window_counts(valid & (prediction >= threshold)) / coverage
    true = window_counts(valid & (label >= threshold)) / coverage
    return 1.0 - np.sum((pred - true) ** 2) / np.sum(pred**2 + true**2)


def test_fss_with_invalid_pixels_matches_brute_force_window_sums():
    prediction, label = rain_fields(shape=(2, 30, 33))
    rows = accumulate(prediction, label).by_threshold()
    for row in rows:
        for size in FSS_SCALES:
            expected = reference_fss(prediction, label, row["threshold"], size)
            assert row[f"fss_{size}"] == pytest.approx(expected, rel=1e-12), (row["threshold"], size)
    assert rows[0]["fss_1"] < rows[0]["fss_5"] < rows[0]["fss_21"] < 1


def test_fss_without_invalid_pixels_matches_the_scores_package():
    spatial = pytest.importorskip("scores.spatial")
    prediction, label = rain_fields(seed=2, shape=(3, 64, 64), invalid=0.0)
    # `scores` pads with dry pixels, this module leaves the outside out: equal when no rain is within a window of the
    # edges. `scores` takes NaN as dry, so this comparison has no invalid pixels (the brute-force test has them).
    border = max(FSS_SCALES)
    for field in (prediction, label):
        field[:, :border], field[:, -border:], field[:, :, :border], field[:, :, -border:] = 0.0, 0.0, 0.0, 0.0
    rows = accumulate(prediction, label).by_threshold()
    fcst, obs = xr.DataArray(prediction, dims=DIMS), xr.DataArray(label, dims=DIMS)
    for row in rows[:-1]:  # no rain of 20 mm/h is left in the small middle
        for size in FSS_SCALES:
            expected = spatial.fss_2d(fcst, obs, event_threshold=row["threshold"], window_size=(size, size),
                                      spatial_dims=("y", "x"), zero_padding=True, reduce_dims=DIMS,
                                      threshold_operator=np.greater_equal)
            assert row[f"fss_{size}"] == pytest.approx(float(expected), rel=1e-12), (row["threshold"], size)


def test_fss_and_hss_by_hand():
    label, prediction = np.zeros((1, 3, 3)), np.zeros((1, 3, 3))
    label[0, 1, 1], prediction[0, 0, 1] = 0.1, 0.1  # rain at exactly the threshold, one pixel apart
    # 3 x 3 windows hold 4 (corner), 6 (edge) or 9 (centre) pixels of the image; only the bottom row misses the
    # prediction's rain pixel
    difference = 1 / 16 + 1 / 36 + 1 / 16
    reference = (4 / 16 + 4 / 36 + 1 / 81) + (2 / 16 + 3 / 36 + 1 / 81)
    assert fss_from_sums(fss_sums(prediction, label, 3, (0.1,))[0]) == pytest.approx(1 - difference / reference)
    assert fss_from_sums(fss_sums(prediction, label, 1, (0.1,))[0]) == 0.0
    assert np.isnan(fss_from_sums(fss_sums(prediction, label, 3, (0.2,))[0]))  # no rain in either field
    # hits 2, false alarms 1, misses 1, correct negatives 4: HSS = 2 (2 * 4 - 1) / (3 * 5 + 3 * 5)
    hss = scores(np.array([1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0]), np.array([1.0, 2.0, 0.0, 3.0, 0, 0, 0, 0])).hss
    assert hss == pytest.approx(14 / 30)


def test_streaming_equals_pooled_for_every_table():
    prediction, label = rain_fields(seed=3, shape=(5, 24, 32), invalid=0.005)
    whole = accumulate(prediction, label)
    assert any(0 < row["csi4"] < 1 and 0 < row["csi8"] < 1 for row in whole.by_threshold())  # blocks that can fail
    for batch in (1, 2):  # the last batch of 2 is shorter
        streamed = accumulate(prediction, label, batch=batch)
        assert np.array_equal(streamed.counts, whole.counts)
        assert all(np.array_equal(streamed.blocks[size], whole.blocks[size]) for size in (4, 8))
        assert streamed.table_row() == pytest.approx(whole.table_row(), rel=1e-12)
        for mine, theirs in zip(streamed.by_threshold() + streamed.by_rate_class(),
                                whole.by_threshold() + whole.by_rate_class(), strict=True):
            assert mine == pytest.approx(theirs, rel=1e-12)


def test_table_shapes_and_plain_types():
    prediction, label = rain_fields(seed=4, shape=(2, 32, 32), invalid=0.002)
    accumulator = accumulate(prediction, label)
    row = accumulator.table_row()
    assert tuple(row) == PAPER_COLUMNS and np.isfinite(list(row.values())).all()
    assert row == {**{key: accumulator.result().to_dict()[key] for key in ("rmse", "cc", "pod", "far", "csi")},
                   **accumulator.block_csi(), "mae": accumulator.result().mae, "bias": accumulator.result().bias,
                   "hss": accumulator.result().hss}
    by_threshold, by_class = accumulator.by_threshold(), accumulator.by_rate_class()
    assert list(by_threshold[0]) == ["threshold", "pod", "far", "csi", "hss", "csi4", "csi8",
                                     *(f"fss_{size}" for size in FSS_SCALES)]
    assert list(by_class[0]) == ["lower", "upper", "n", "rmse", "mae", "bias", "cc"]
    assert [(item["lower"], item["upper"]) for item in by_class] == list(RATE_CLASSES)
    values = [*row.values(), *(value for item in by_threshold + by_class for value in item.values())]
    assert {type(value) for value in values} == {float, int}
    json.dumps([row, by_threshold, by_class])


def test_torch_xarray_and_dask_inputs_give_identical_scores():
    torch = pytest.importorskip("torch")
    prediction, label = (values.astype(np.float32) for values in rain_fields(seed=5, shape=(2, 16, 16)))
    expected = accumulate(prediction, label)
    inputs = {
        "torch float32": (torch.from_numpy(prediction), torch.from_numpy(label)),
        "torch needing grad": (torch.from_numpy(prediction).requires_grad_(), torch.from_numpy(label)),
        "xarray": (xr.DataArray(prediction, dims=DIMS), xr.DataArray(label, dims=DIMS)),
        "dask-backed xarray": (xr.DataArray(prediction, dims=DIMS).chunk({"image": 1}),
                               xr.DataArray(label, dims=DIMS).chunk({"image": 1})),
    }
    for name, (pred, true) in inputs.items():
        result = accumulate(pred, true)
        np.testing.assert_equal(tables(result), tables(expected), err_msg=name)  # NaN equals NaN here
    half = accumulate(torch.from_numpy(prediction).half(), torch.from_numpy(label).half())
    np.testing.assert_equal(tables(half), tables(accumulate(prediction.astype(np.float16), label.astype(np.float16))))


@pytest.mark.skipif("not __import__('torch').cuda.is_available()")
def test_cuda_tensors_give_the_cpu_scores():
    import torch

    prediction, label = (torch.from_numpy(values) for values in rain_fields(seed=6, shape=(2, 16, 16)))
    np.testing.assert_equal(tables(accumulate(prediction.cuda().bfloat16(), label.cuda().bfloat16())),
                            tables(accumulate(prediction.bfloat16(), label.bfloat16())))


def test_non_images_are_refused_before_anything_is_added():
    accumulator = StreamingScores(fss_scales=FSS_SCALES)
    with pytest.raises(ValueError, match="equal images"):
        accumulator.update(np.ones(5), np.ones(5))
    assert accumulator.result().n_pixels == 0 and not accumulator.counts.any()
    with pytest.raises(ValueError, match="odd"):
        StreamingScores(fss_scales=(1, 4))


def test_importing_the_metrics_does_not_import_torch():
    code = "import sys, satpy_prenet.evaluation.metrics; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
