"""Drop-spectrum networks: shapes, attention, per-layer epoch budgets, determinism, learning a lag, files, samples."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from satpy_prenet.evaluation.metrics import regression_scores
from satpy_prenet.ground import dsd
from satpy_prenet.ground import spectra_training as st
from satpy_prenet.ground.networks import NETWORKS, LSTMAttentionLSTM, SequenceAttention, build_network

CLASSES = dsd.DiameterClasses.regular(d_max=6.4, n=64)
SPEEDS = dsd.atlas_1973(CLASSES.centres)
HEIGHTS = (100.0, 200.0, 300.0)
SMALL = st.SpectraConfig(sequence_minutes=4, hidden1=8, hidden2=4, dropout=0.0, epochs1=3, epochs2=3, batch_size=16)


def _red_noise(rng, n, sd, phi=0.5):
    """AR(1) series of standard deviation ``sd``."""
    out = np.zeros(n)
    for t in range(1, n):
        out[t] = phi * out[t - 1] + np.sqrt(1 - phi**2) * sd * rng.standard_normal()
    return out


def _dataset(seed=0, n_events=5, event_minutes=20, dry_minutes=6, lag=0, nan_gates=1):
    """Spectra of normalized gammas, the same at every gate but the lowest (NaN, near field); the ground rate is
    the rate of the spectrum ``lag`` minutes earlier."""
    rng = np.random.default_rng(seed)
    n = n_events * (event_minutes + dry_minutes)
    events = np.zeros(n, np.int32)
    for k in range(n_events):
        start = k * (event_minutes + dry_minutes) + dry_minutes
        events[start:start + event_minutes] = k + 1
    gamma = dsd.NormalizedGamma(3.3 + _red_noise(rng, n, 0.25), np.clip(1.4 + _red_noise(rng, n, 0.3), 0.6, 3), 3)
    spectrum = gamma.spectrum(CLASSES) * (events != 0)[:, None]
    aloft = dsd.rain_rate(spectrum, CLASSES, SPEEDS)
    ground = np.concatenate([np.zeros(lag), aloft[:n - lag]])
    spectra = np.repeat(spectrum[:, None, :], len(HEIGHTS), axis=1).astype(np.float32)
    spectra[:, :nan_gates] = np.nan
    return xr.Dataset(
        {"drop_spectrum": (("time", "height", "diameter"), spectra),
         "rain_rate": ("time", ground.astype(np.float32)), "event": ("time", events)},
        coords={"time": pd.date_range("2024-06-01", periods=n, freq="min"), "height": np.asarray(HEIGHTS),
                "diameter": CLASSES.centres, "diameter_width": ("diameter", CLASSES.widths),
                "fall_speed": ("diameter", SPEEDS)},
        attrs={"simulated": 1, "seed": seed})


@pytest.fixture(scope="module")
def small_split():
    dataset = _dataset()
    return dataset, st.split_by_event(st.make_samples(dataset, SMALL), seed=0)


@pytest.fixture(scope="module")
def trained(small_split):
    _, split = small_split
    model, _ = st.train_network("lstm_attention_lstm", split.train, split.validation, SMALL, progress=False)
    return model, split


@pytest.mark.parametrize("kind", list(NETWORKS))
def test_networks_give_one_non_negative_rate_per_sequence(kind):
    torch.manual_seed(0)
    model = build_network(kind, n_features=7, hidden1=8, hidden2=4)
    x = torch.randn(3, 5, 7)
    assert model(x).shape == (3,)
    with torch.no_grad():
        model.head.bias.fill_(-50.0)  # a linear head alone would give large negative rates
    rates = model.eval()(x)
    assert torch.all(rates >= 0) and torch.all(torch.isfinite(rates))


@pytest.mark.parametrize("kind", list(NETWORKS))
def test_parameter_groups_split_the_first_layer_from_the_rest(kind):
    model = build_network(kind, n_features=7, hidden1=8, hidden2=4)
    first = {id(p) for p in model.first_layer_parameters()}
    other = {id(p) for p in model.other_parameters()}
    assert first == {id(p) for p in model.lstm1.parameters()}
    assert not first & other and first | other == {id(p) for p in model.parameters()}
    assert {id(p) for p in model.head.parameters()} <= other


def test_unknown_network_kind_is_refused():
    with pytest.raises(ValueError, match="gru"):
        build_network("gru", 7)


def test_attention_mixes_the_time_steps():
    torch.manual_seed(0)
    attention = SequenceAttention(8)
    x = torch.randn(2, 6, 8)
    changed = x.clone()
    changed[:, 0] += 1.0
    with torch.no_grad():
        # steps 1.. have unchanged inputs: their outputs move only because they attend to step 0
        assert not torch.allclose(attention(x)[:, 1:], attention(changed)[:, 1:])


def test_attention_lstm_output_depends_on_an_early_step_and_on_the_attention():
    torch.manual_seed(0)
    model = LSTMAttentionLSTM(n_features=5, hidden1=8, hidden2=4).eval()
    x = torch.randn(4, 6, 5)
    changed = x.clone()
    changed[:, 0] += 2.0
    with torch.no_grad():
        out = model(x)
        assert not torch.allclose(out, model(changed))
        model.attention.value.weight.zero_()
        model.attention.value.bias.zero_()  # the attention block now adds nothing to its residual
        assert not torch.allclose(out, model(x))


@pytest.mark.parametrize(("epochs1", "epochs2"), [(2, 5), (5, 2)])
def test_each_parameter_group_is_updated_for_its_own_epochs(small_split, epochs1, epochs2):
    _, split = small_split
    config = replace(SMALL, epochs1=epochs1, epochs2=epochs2)
    snapshots = []

    def snapshot(epoch, model):
        snapshots.append([torch.cat([p.detach().flatten() for p in params]).clone()
                          for params in (model.first_layer_parameters(), model.other_parameters())])

    model, history = st.train_network("lstm_attention_lstm", split.train, split.validation, config,
                                      progress=False, on_epoch=snapshot)
    assert len(snapshots) == len(history.train_rmse) == max(epochs1, epochs2)
    for group, budget in enumerate((epochs1, epochs2)):
        moved = [not torch.equal(snapshots[epoch][group], snapshots[epoch - 1][group])
                 for epoch in range(1, len(snapshots))]
        assert moved == [epoch < budget for epoch in range(1, len(snapshots))]
    assert all(p.requires_grad for p in model.parameters())


def test_training_is_deterministic_for_a_seed(small_split):
    _, split = small_split
    state = torch.get_rng_state()
    runs = [st.train_network("lstm_attention_lstm", split.train, split.validation, SMALL, seed=seed,
                             progress=False) for seed in (3, 3, 4)]
    assert torch.equal(torch.get_rng_state(), state)
    (model_a, history_a), (model_b, history_b), (model_c, history_c) = runs
    assert history_a.to_dict() == history_b.to_dict()
    assert np.array_equal(st.predict(model_a, split.test), st.predict(model_b, split.test))
    assert not np.array_equal(st.predict(model_a, split.test), st.predict(model_c, split.test))


def test_non_finite_loss_is_reported(small_split):
    dataset, _ = small_split
    huge = dataset.assign(rain_rate=dataset["rain_rate"] * np.float32(1e37))
    split = st.split_by_event(st.make_samples(huge, SMALL), seed=0)
    with pytest.raises(FloatingPointError, match="non-finite loss in epoch 1"):
        st.train_network("lstm", split.train, split.validation, SMALL, progress=False)


def test_attention_lstm_learns_a_lagged_target_better_than_the_integral_baseline():
    dataset = _dataset(seed=1, n_events=10, event_minutes=50, dry_minutes=10, lag=3)
    config = st.SpectraConfig(sequence_minutes=6, heights=(200.0,), hidden1=32, hidden2=16, lr1=0.005, lr2=0.005,
                              epochs1=60, epochs2=80, batch_size=32)
    split = st.split_by_event(st.make_samples(dataset, config), seed=1)
    model, history = st.train_network("lstm_attention_lstm", split.train, split.validation, config, seed=1,
                                      progress=False)
    network = regression_scores(st.predict(model, split.test), split.test.y)
    baseline = regression_scores(st.integral_baseline(dataset, split.test), split.test.y)
    climatology = regression_scores(np.full(len(split.test), split.train.y.mean()), split.test.y)
    assert history.validation_rmse[history.best_epoch] < history.validation_rmse[0]
    assert network.rmse < 0.8 * climatology.rmse < baseline.rmse
    assert network.pearson_r > 0.65 > baseline.pearson_r


def test_integral_baseline_is_the_rate_of_the_lowest_usable_gate(small_split):
    dataset, split = small_split
    rates = st.integral_baseline(dataset, split.test)
    np.testing.assert_allclose(rates, split.test.y, rtol=1e-5)  # lag 0: the ground gets the rain aloft
    assert np.array_equal(st.integral_baseline(dataset, split.test, height=300.0), rates)
    with pytest.raises(ValueError, match="missing or all-NaN"):
        st.integral_baseline(dataset, split.test, height=100.0)


def test_saved_model_loads_with_identical_predictions(trained, tmp_path):
    model, split = trained
    path = st.save_model(tmp_path / "net.safetensors", model, "lstm_attention_lstm", SMALL,
                         split.train.normalisation, {"simulated": np.int64(1), "seed": 0})
    loaded, metadata = st.load_model(path)
    assert isinstance(loaded, LSTMAttentionLSTM)
    assert np.array_equal(st.predict(loaded, split.test), st.predict(model, split.test))
    assert metadata["trained_on"] == "simulated" and metadata["kind"] == "lstm_attention_lstm"
    assert st.SpectraConfig(**metadata["config"]) == SMALL
    normalisation = st.Normalisation.from_dict(metadata["normalisation"])
    assert normalisation.heights.tolist() == [200.0, 300.0]
    assert np.array_equal(normalisation.mean, split.train.normalisation.mean)
    st.save_model(path, model, "lstm_attention_lstm", SMALL, normalisation, {})
    assert st.load_model(path)[1]["trained_on"] == "measured"


def test_saving_under_the_wrong_kind_is_refused(trained, tmp_path):
    model, split = trained
    with pytest.raises(ValueError, match="not a network of kind 'lstm'"):
        st.save_model(tmp_path / "net.safetensors", model, "lstm", SMALL, split.train.normalisation, {})


def _tamper_tensor(raw):
    raw[-3] ^= 0x40
    return raw


def _tamper_metadata(raw):
    key = b'\\"mean\\": ['  # the JSON is a string inside safetensors' JSON header, so its quotes are escaped
    digit = raw.index(b".", raw.index(key)) + 1  # first decimal of the first mean
    raw[digit] = ord("7") if raw[digit] != ord("7") else ord("8")
    return raw


@pytest.mark.parametrize(("damage", "message"), [
    (_tamper_tensor, "tensors do not match their SHA-256"),
    (_tamper_metadata, "metadata do not match their SHA-256"),
    (lambda raw: raw[: len(raw) - 10], "not a readable safetensors file"),
    (lambda raw: raw[:5], "not a readable safetensors file"),
])
def test_damaged_model_files_are_refused_with_their_name(trained, tmp_path, damage, message):
    model, split = trained
    path = st.save_model(tmp_path / "damaged.safetensors", model, "lstm_attention_lstm", SMALL,
                         split.train.normalisation, {})
    path.write_bytes(bytes(damage(bytearray(path.read_bytes()))))
    with pytest.raises(ValueError, match=f"damaged.safetensors: .*{message}"):
        st.load_model(path)


def test_missing_model_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="absent.safetensors: model file not found"):
        st.load_model(tmp_path / "absent.safetensors")


def test_samples_are_the_sequences_ending_at_rain_minutes(small_split):
    dataset, _ = small_split
    samples = st.make_samples(dataset, SMALL)
    spectra = dataset["drop_spectrum"].sel(height=[200.0, 300.0]).values
    positions = np.searchsorted(dataset["time"].values, samples.times)
    assert samples.x.shape == (positions.size, 4, 2 * 64) and samples.x.dtype == np.float32
    for step in range(4):
        expected = np.log10(1 + spectra[positions - 3 + step]).reshape(positions.size, -1)
        np.testing.assert_allclose(samples.x[:, step], expected, rtol=1e-6)
    chosen = (dataset["event"].values != 0) & (dataset["rain_rate"].values >= SMALL.min_rain_mm_h)
    assert np.array_equal(positions, np.flatnonzero(chosen))
    assert np.array_equal(samples.y, dataset["rain_rate"].values[positions])


def test_samples_skip_sequences_across_a_gap_and_zero_missing_minutes(small_split):
    dataset, _ = small_split
    gap = dataset["time"].values[62]  # inside the third event (minutes 58 to 77)
    missing = dataset["time"].values[70]
    damaged = dataset.drop_sel(time=[gap])
    damaged["drop_spectrum"].loc[{"time": missing}] = np.nan
    samples = st.make_samples(damaged, SMALL)
    minutes = (samples.times - gap) / np.timedelta64(1, "m")
    assert not np.any((minutes > 0) & (minutes < SMALL.sequence_minutes))
    assert np.any(minutes == SMALL.sequence_minutes)
    last = np.flatnonzero(samples.times == missing)
    assert last.size == 1 and np.all(samples.x[last, -1] == 0) and np.all(np.isfinite(samples.x))


def test_event_split_keeps_events_whole_and_normalises_with_the_training_split(small_split):
    _, split = small_split
    event_sets = [set(part.events.tolist()) for part in split]
    assert [len(events) for events in event_sets] == [3, 1, 1]
    assert not (event_sets[0] & event_sets[1] or event_sets[0] & event_sets[2] or event_sets[1] & event_sets[2])
    mean = split.train.x.reshape(-1, split.train.x.shape[-1]).mean(axis=0)
    for part in split:
        np.testing.assert_allclose(part.normalisation.mean, mean, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(split.train.normalised().mean(axis=(0, 1))) < 1e-4)


def test_event_split_needs_three_events(small_split):
    dataset, _ = small_split
    samples = st.make_samples(dataset.where(dataset["event"] <= 2, drop=True), SMALL)
    with pytest.raises(ValueError, match="at least 3 rain events"):
        st.split_by_event(samples)


@pytest.mark.parametrize(("change", "message"), [
    (lambda ds: ds.drop_vars("rain_rate"), "lacks rain_rate"),
    (lambda ds: ds.drop_vars("fall_speed"), "lacks fall_speed"),
    (lambda ds: ds.assign(event=ds["event"] * 0), "no rain events"),
    (lambda ds: ds.assign(drop_spectrum=ds["drop_spectrum"] * np.nan), "no usable gates"),
    (lambda ds: ds.isel(time=slice(None, None, 2)), "no samples: .* complete 4-minute sequence"),
])
def test_make_samples_names_the_problem(small_split, change, message):
    dataset, _ = small_split
    with pytest.raises(ValueError, match=message):
        st.make_samples(change(dataset), SMALL)


def test_make_samples_refuses_unusable_requested_gates(small_split):
    dataset, _ = small_split
    config = st.SpectraConfig(sequence_minutes=4, heights=(100.0, 200.0))
    with pytest.raises(ValueError, match=r"gate heights \[100.0\] m are missing or all-NaN"):
        st.make_samples(dataset, config)
