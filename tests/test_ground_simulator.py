# SPDX-License-Identifier: GPL-3.0-or-later
"""The ground-site simulator: seeding, layout, mass balance, and the aloft-to-ground effects it claims to model."""

import dataclasses

import numpy as np
import pytest

from satpy_prenet.ground import dsd
from satpy_prenet.ground.gauges import read_gauges
from satpy_prenet.ground.simulator import (
    SiteConfig,
    doppler_diameter_classes,
    gate_moments,
    gauge_table,
    simulate_site,
    speed_to_diameter,
)

#: Every instrument effect off: still air, no turbulence, no spectral noise, no attenuation, no evaporation.
IDEAL = dict(air_velocity_std_m_s=(0.0, 0.0), turbulence_m_s=(0.0, 0.0), averaged_spectra=10**9,
             attenuation_residual=0.0, noise_dbz_300m=-60.0, evaporation_mm2_s=(0.0, 0.0), missing_fraction=0.0)


@pytest.fixture(scope="module")
def site():
    return simulate_site(SiteConfig(days=3), seed=5)


def _integral(site, height):
    return gate_moments(site, height)[1]


def _wet(site):
    return site["event"].values > 0


def test_same_seed_same_site_and_other_seed_other_site(site):
    again = simulate_site(SiteConfig(days=3), seed=5)
    other = simulate_site(SiteConfig(days=3), seed=6)
    assert again.identical(site)
    assert not np.array_equal(other["rain_rate"].values, site["rain_rate"].values)


def test_layout(site):
    config = SiteConfig(days=3)
    assert site.sizes["time"] == 3 * 1440 and site.sizes["height"] == config.n_gates
    assert site.attrs["simulated"] == 1
    near = site["drop_spectrum"].isel(height=slice(0, config.near_field_gates)).values
    assert np.all(np.isnan(near))
    usable = site["drop_spectrum"].isel(height=slice(config.near_field_gates, None)).values
    missing = site["radar_missing"].values.astype(bool)
    assert np.all(np.isfinite(usable[~missing])) and np.all(np.isnan(usable[missing]))
    assert np.all(np.diff(site["diameter"].values) > 0)
    np.testing.assert_allclose(site["fall_speed"].values, dsd.atlas_1973(site["diameter"].values))
    rain = site["rain_rate"].values
    assert rain[~_wet(site)].sum() < 0.01 * rain.sum() and rain[_wet(site)].max() > 1  # drops still falling
    assert set(np.unique(site["regime"].values[_wet(site)])) <= {1, 2, 3}


def test_rain_regimes_persist(site):
    regime = site["regime"].values[_wet(site)]
    changes = np.count_nonzero(np.diff(regime))
    assert regime.size / max(changes, 1) > 10  # spells last tens of minutes, not single minutes


def test_gauge_catches_the_ground_rain_to_one_bucket(site):
    total = site["rain_rate"].values.sum() / 60.0
    caught = site["gauge_tips"].values.sum() * site.attrs["bucket_mm"]
    assert total - site.attrs["bucket_mm"] <= caught <= total


def test_gauge_table_is_read_back_by_the_gauge_reader(site, tmp_path):
    path = tmp_path / "gauge.csv"
    gauge_table(site, station="S1").to_csv(path, index=False)
    gauges = read_gauges(path)
    assert gauges.sizes == {"station": 1, "time": site.sizes["time"]}
    np.testing.assert_allclose(gauges["precipitation_mm"].values[0], site["gauge_tips"].values * 0.2)
    assert gauges["lon"].item() == site.attrs["lon"]


def test_speed_to_diameter_inverts_the_fall_speed_law():
    diameters = np.linspace(0.2, 6.0, 30)
    np.testing.assert_allclose(speed_to_diameter(dsd.atlas_1973(diameters)), diameters, rtol=1e-10)
    assert np.isnan(speed_to_diameter(10.0)) and np.isnan(speed_to_diameter(0.0))
    classes, bins = doppler_diameter_classes(SiteConfig())
    assert classes.size == bins.size and np.all(classes.lower[1:] >= classes.lower[:-1])


def test_ideal_radar_retrieves_the_rain_at_its_gate():
    ideal = simulate_site(SiteConfig(days=2, **IDEAL), seed=3)
    wet = _wet(ideal)
    truth = ideal["rain_rate_aloft"].sel(height=300.0).values[wet]
    retrieved = _integral(ideal, 300.0)[wet]
    assert np.corrcoef(retrieved, truth)[0, 1] > 0.98
    assert abs(retrieved.sum() / truth.sum() - 1) < 0.15  # truncation of the smallest and largest drops


def test_air_motion_degrades_the_still_air_retrieval():
    settings = dict(IDEAL, air_velocity_std_m_s=(1.0, 1.0))
    moving = simulate_site(SiteConfig(days=2, **settings), seed=3)
    ideal = simulate_site(SiteConfig(days=2, **IDEAL), seed=3)
    scores = []
    for data in (ideal, moving):
        wet = _wet(data)
        scores.append(np.corrcoef(_integral(data, 300.0)[wet], data["rain_rate_aloft"].sel(height=300.0)[wet])[0, 1])
    assert scores[1] < scores[0] - 0.05


def test_big_drops_arrive_first_and_the_ground_lags_the_gates():
    ideal = simulate_site(SiteConfig(days=2, **IDEAL), seed=3)
    ground = ideal["rain_rate"].values
    aloft = ideal["rain_rate_aloft"].sel(height=800.0).values
    lags = np.arange(0, 6)
    matches = [np.corrcoef(aloft[: aloft.size - lag], ground[lag:])[0, 1] for lag in lags]
    assert lags[int(np.argmax(matches))] >= 1
    # without evaporation the flux is conserved: the same rain passes every level
    total_ground, total_aloft = ground.sum(), aloft.sum()
    assert abs(total_aloft / total_ground - 1) < 0.02


def test_evaporation_removes_rain_on_the_way_down():
    dry = simulate_site(SiteConfig(days=2, **dict(IDEAL, evaporation_mm2_s=(1e-3, 1e-3))), seed=3)
    aloft = dry["rain_rate_aloft"].sel(height=800.0).values.sum()
    assert dry["rain_rate"].values.sum() < 0.97 * aloft


def test_cw_reflectivity_carries_each_events_calibration_bias():
    config = SiteConfig(days=3, **dict(IDEAL, cw_noise_db=0.0, calibration_bias_db=(2.0, 2.0)))
    biased = simulate_site(config, seed=4)
    unbiased = simulate_site(dataclasses.replace(config, calibration_bias_db=(0.0, 0.0)), seed=4)
    difference = (biased["reflectivity_cw"] - unbiased["reflectivity_cw"]).values
    event = biased["event"].values
    for number in np.unique(event[event > 0]):
        offsets = difference[event == number]
        offsets = offsets[np.isfinite(offsets)]
        np.testing.assert_allclose(np.abs(offsets), 2.0, atol=1e-3)


def test_satellite_error_is_the_declared_power_law(site):
    rate = site["satellite_rate"].values
    areal = site["areal_rain_rate"].values
    attrs = site["satellite_rate"].attrs
    keep = (areal > 0.5) & (rate > 0)
    residual = np.log(rate[keep]) - np.log(attrs["alpha"] * areal[keep] ** attrs["beta"])
    assert keep.sum() > 20
    assert abs(residual.mean()) < 3 * attrs["sigma"] / np.sqrt(keep.sum())
    assert 0.7 * attrs["sigma"] < residual.std() < 1.3 * attrs["sigma"]


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="cw_height_m"):
        SiteConfig(cw_height_m=100.0)
    with pytest.raises(ValueError, match="source_height_m"):
        SiteConfig(source_height_m=500.0)
