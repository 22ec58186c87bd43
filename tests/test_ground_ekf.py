import json

import numpy as np
import pytest

from satpy_prenet.ground import zr
from satpy_prenet.ground.ekf import ZREKF, EKFConfig, forward

T0 = np.datetime64("2024-07-01T00:00", "s")
HALF_HOUR = np.timedelta64(30, "m")


@pytest.mark.parametrize("x", [(np.log(200), 1.6), (np.log(60), 1.05), (np.log(900), 1.75), (np.log(386), 1.32)])
def test_jacobian_matches_central_differences(x):
    rng = np.random.default_rng(3)
    z = 10 ** (rng.uniform(1.5, 5.0, 12))
    z[2] = 0.0
    dt = rng.uniform(0.05, 0.1, 12)
    _, jacobian, _ = forward(np.array(x), z, dt)
    step = 1e-6
    for k in range(2):
        shift = np.zeros(2)
        shift[k] = step
        numeric = (forward(np.array(x) + shift, z, dt)[0] - forward(np.array(x) - shift, z, dt)[0]) / (2 * step)
        assert jacobian[k] == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def test_forward_sums_rates_not_reflectivity():
    z = np.array([10.0**2, 10.0**5])
    h, _, radar_mm = forward(np.array([np.log(200), 1.6]), z, 0.5)
    assert radar_mm == pytest.approx(0.5 * zr.MARSHALL_PALMER.rain_rate(z).sum())
    assert h == pytest.approx(np.log(radar_mm))


def test_state_stays_within_bounds_under_adversarial_observations():
    config = EKFConfig(reject_sigma=1e9, min_tips=1, sigma_repr=0.01, q_ln_a=5.0, q_b=1.0)
    ekf = ZREKF(std_ln_a=3.0, std_b=1.0, config=config)
    z = np.full(6, 10.0**3.5)
    for k in range(60):
        tips = 5000 if k % 3 else 1
        record = ekf.step(z * (1e-3 if k % 2 else 1e3), 1 / 12, tips, T0 + k * HALF_HOUR)
        assert record.status == "accepted"
        assert 50 - 1e-9 <= record.posterior[0] <= 1000 + 1e-9
        assert 1.0 <= record.posterior[1] <= 1.8
        assert np.all(np.isfinite(ekf.P)) and np.all(np.linalg.eigvalsh(ekf.P) >= -1e-12)
    assert ekf.counters == {"steps": 60, "accepted": 60, "rejected": 0, "gated": 0}


def test_gating_reasons():
    ekf = ZREKF()
    z = np.full(6, 10.0**3.5)
    assert "tips" in ekf.step(z, 1 / 12, 1, T0).reason
    assert "missing" in ekf.step(np.r_[z[:5], np.nan], 1 / 12, 5, T0 + HALF_HOUR).reason
    assert "no radar echo" in ekf.step(np.zeros(6), 1 / 12, 5, T0 + 2 * HALF_HOUR).reason
    assert ekf.counters["gated"] == 3 and ekf.last_update is None
    assert (ekf.a, ekf.b) == pytest.approx((200.0, 1.6))


def test_rejection_of_outlying_innovation():
    ekf = ZREKF(std_ln_a=0.05, std_b=0.01, config=EKFConfig(sigma_repr=0.1))
    z = np.full(6, 10.0**3.5)
    radar_mm = zr.MARSHALL_PALMER.rain_rate(z).sum() / 12
    record = ekf.step(z, 1 / 12, round(100 * radar_mm / 0.2), T0)
    assert record.status == "rejected" and abs(record.innovation) > 3 * record.sigma
    assert record.posterior == record.prior and ekf.counters["rejected"] == 1
    record = ekf.step(z, 1 / 12, round(1.2 * radar_mm / 0.2), T0 + HALF_HOUR)
    assert record.status == "accepted" and record.posterior[0] < record.prior[0]


def test_a_lasting_change_is_followed_after_the_allowed_rejections():
    """Two rejections of a rain twice the radar's, then the third window opens ln a and the filter follows."""
    ekf = ZREKF(std_ln_a=0.05, std_b=0.01, config=EKFConfig(sigma_repr=0.1, max_rejections=2))
    z = np.full(6, 10.0**3.5)
    radar_mm = zr.MARSHALL_PALMER.rain_rate(z).sum() / 12
    tips = round(2 * radar_mm / 0.2)
    records = [ekf.step(z, 1 / 12, tips, T0 + k * HALF_HOUR) for k in range(5)]
    assert [r.status for r in records[:3]] == ["rejected", "rejected", "accepted"]
    assert "after 2 rejections" in records[2].reason and ekf.consecutive_rejections == 0
    assert records[2].posterior[1] == pytest.approx(records[2].prior[1], abs=0.05)  # b barely moves
    assert ekf.rain_rate(z).sum() / 12 == pytest.approx(tips * 0.2, rel=0.15)
    never = ZREKF(std_ln_a=0.05, std_b=0.01, config=EKFConfig(sigma_repr=0.1, max_rejections=10**6))
    assert all(never.step(z, 1 / 12, tips, T0 + k * HALF_HOUR).status == "rejected" for k in range(5))


def test_fixed_b_tracks_bias_only():
    ekf = ZREKF(b=1.4, fixed_b=True)
    z = np.full(6, 10.0**3.5)
    radar_mm = zr.ZR(200, 1.4).rain_rate(z).sum() / 12
    for k in range(10):
        ekf.step(z, 1 / 12, round(2 * radar_mm / 0.2), T0 + k * HALF_HOUR)
    assert ekf.b == 1.4
    adjusted = ekf.rain_rate(z).sum() / 12
    assert adjusted == pytest.approx(2 * radar_mm, rel=0.1)


def _run(ekf, windows):
    return [ekf.step(z, 1 / 12, tips, time) for z, tips, time in windows]


def test_save_load_resumes_identically(tmp_path):
    rng = np.random.default_rng(4)
    windows = [(10 ** rng.uniform(2.5, 4.5, 6), int(rng.integers(0, 30)), T0 + k * HALF_HOUR) for k in range(30)]
    ekf = ZREKF(config=EKFConfig(sigma_repr=0.15))
    _run(ekf, windows[:15])
    path = tmp_path / "ekf.json"
    ekf.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["ekf.json"]
    resumed = ZREKF.load(path)
    assert json.dumps(resumed.to_dict()) == json.dumps(ekf.to_dict())
    assert _run(resumed, windows[15:]) == _run(ekf, windows[15:])


@pytest.mark.parametrize("text", ["{not json", "[]", '{"version": 1}', '{"version": 7}'])
def test_corrupt_state_file_names_the_file(tmp_path, text):
    path = tmp_path / "state.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="corrupt EKF state file .*state.json"):
        ZREKF.load(path)


def test_bad_state_shape(tmp_path):
    state = ZREKF().to_dict()
    state["P"] = [1.0, 2.0]
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    with pytest.raises(ValueError, match="state.json.*2 x 2"):
        ZREKF.load(path)


def _simulate(seed, days=8, bucket=0.2):
    """5-min radar samples, 30-min gauge windows, drifting true (a, b), 1 dB radar noise, cumulative tipping bucket."""
    rng = np.random.default_rng(seed)
    n = days * 288
    t = np.arange(n) / 288.0
    ln_r = np.zeros(n)
    wet = np.zeros(n)
    for k in range(1, n):
        ln_r[k] = 0.95 * ln_r[k - 1] + 0.3 * rng.normal()
        wet[k] = 0.98 * wet[k - 1] + 0.2 * rng.normal()
    rain = np.where(wet > 0, np.exp(0.5 + ln_r), 0.0)
    a_true = 400 + 200 * np.sin(2 * np.pi * t / 6)
    b_true = 1.45 + 0.15 * np.cos(2 * np.pi * t / 5)
    z = a_true * rain**b_true * 10 ** (rng.normal(0, 1.0, n) / 10)
    depth = np.cumsum(rain / 12)
    tips_cum = np.floor(depth / bucket)
    ends = np.arange(6, n + 1, 6)
    tips = np.diff(np.r_[0, tips_cum[ends - 1]]).astype(int)
    truth = np.diff(np.r_[0, depth[ends - 1]])
    return z.reshape(-1, 6), tips, truth


def _rmse(estimate, truth):
    wet = truth > 0
    return float(np.sqrt(np.mean((estimate[wet] - truth[wet]) ** 2)))


def _one_step_ahead(ekf, z, tips):
    """30-min radar depth of each window with the relation known before its gauge reading (the prior)."""
    windows = [(zk, tk, T0 + (k + 1) * HALF_HOUR) for k, (zk, tk) in enumerate(zip(z, tips, strict=True))]
    records = _run(ekf, windows)
    assert ekf.counters["accepted"] > 100
    return np.array([zr.ZR(*r.prior).rain_rate(zk).sum() / 12 for r, zk in zip(records, z, strict=True)])


def test_ekf_beats_fixed_relations_on_drifting_events():
    scores = {"ekf": [], "ekf_fixed_b": [], "marshall_palmer": [], "beijing_plain": []}
    for seed in (10, 11, 12):
        z, tips, truth = _simulate(seed)
        scores["ekf"].append(_rmse(_one_step_ahead(ZREKF(a=200.0, b=1.6), z, tips), truth))
        scores["ekf_fixed_b"].append(_rmse(_one_step_ahead(ZREKF(a=200.0, b=1.4, fixed_b=True), z, tips), truth))
        for name in ("marshall_palmer", "beijing_plain"):
            scores[name].append(_rmse(zr.PRESETS[name].rain_rate(z).sum(axis=1) / 12, truth))
    mean = {name: float(np.mean(values)) for name, values in scores.items()}
    print("30-min RMSE (mm), one-step-ahead:", {k: round(v, 4) for k, v in mean.items()})
    for name in ("ekf", "ekf_fixed_b"):
        assert mean[name] < 0.9 * mean["beijing_plain"]
        assert mean[name] < 0.9 * mean["marshall_palmer"]
        for k in range(3):
            assert scores[name][k] < min(scores["marshall_palmer"][k], scores["beijing_plain"][k])


def test_a_state_saved_before_the_rejection_counter_still_loads():
    ekf = ZREKF(a=300.0, b=1.4)
    state = ekf.to_dict()
    del state["consecutive_rejections"]
    restored = ZREKF.from_dict(state)
    assert restored.consecutive_rejections == 0 and restored.a == pytest.approx(300.0)
