import numpy as np
import pytest

from satpy_prenet.ground import zr


def test_presets():
    assert (zr.MARSHALL_PALMER.a, zr.MARSHALL_PALMER.b) == (200.0, 1.6)
    assert (zr.CONVECTIVE.a, zr.CONVECTIVE.b) == (300.0, 1.4)
    assert (zr.BEIJING_PLAIN.a, zr.BEIJING_PLAIN.b) == (386.0, 1.32)
    assert (zr.TROPICAL.a, zr.TROPICAL.b) == (250.0, 1.2)
    assert set(zr.PRESETS) == {"marshall_palmer", "convective", "beijing_plain", "tropical"}


@pytest.mark.parametrize("a, b", [(0, 1.5), (-1, 1.5), (200, 0), (200, np.nan), (np.inf, 1.4)])
def test_invalid_user_values(a, b):
    with pytest.raises(ValueError, match="must be finite and > 0"):
        zr.ZR(a, b)


@pytest.mark.parametrize("relation", list(zr.PRESETS.values()) + [zr.ZR(123.0, 1.1)])
def test_round_trips(relation):
    rain = np.array([0.0, 0.05, 1.0, 12.5, 150.0, np.nan])
    z = relation.reflectivity(rain)
    assert z[0] == 0 and np.isnan(z[-1])
    np.testing.assert_allclose(relation.rain_rate(z), rain, rtol=1e-12, equal_nan=True)
    dbz = relation.reflectivity_dbz(rain)
    assert dbz[0] == -np.inf
    np.testing.assert_allclose(relation.rain_rate_from_dbz(dbz), rain, rtol=1e-12, equal_nan=True)
    assert relation.reflectivity_dbz(1.0) == pytest.approx(10 * np.log10(relation.a))


def test_dbz_helpers_and_invalid_values():
    np.testing.assert_allclose(zr.dbz_to_linear([0.0, 10.0, 40.0, -np.inf]), [1.0, 10.0, 1e4, 0.0])
    out = zr.linear_to_dbz([1e4, 0.0, -5.0, np.nan])
    assert out[0] == pytest.approx(40.0) and out[1] == -np.inf and np.isnan(out[2:]).all()
    assert np.isnan(zr.MARSHALL_PALMER.rain_rate(-3.0))
    assert np.isnan(zr.MARSHALL_PALMER.reflectivity(-0.5))


def test_fit_zr_noiseless_and_noisy():
    rng = np.random.default_rng(1)
    rain = rng.lognormal(0.5, 1.0, 500)
    z = 320.0 * rain**1.45
    fit = zr.fit_zr(z, rain)
    assert fit.relation.a == pytest.approx(320.0, rel=1e-9)
    assert fit.relation.b == pytest.approx(1.45, rel=1e-9)
    assert fit.rmse_log < 1e-9 and fit.r2 == pytest.approx(1.0)
    noisy = z * 10 ** (rng.normal(0, 1.0, z.size) / 10)
    noisy[:5] = np.nan
    fit = zr.fit_zr(noisy, rain)
    assert fit.n_pairs == np.count_nonzero(rain[5:] > 0.1)
    assert fit.relation.a == pytest.approx(320.0, rel=0.08)
    assert fit.relation.b == pytest.approx(1.45, abs=0.05)


def test_fit_zr_errors():
    with pytest.raises(ValueError, match="3 usable pairs"):
        zr.fit_zr([100, 200, 300, 400], [1.0, 2.0, 3.0, 0.0])
    with pytest.raises(ValueError, match="all usable rain rates are equal"):
        zr.fit_zr(np.full(20, 300.0), np.ones(20))


def test_dynamic_zr_tracks_step_in_b():
    rng = np.random.default_rng(2)
    n = 400
    times = np.datetime64("2024-07-01T00:00") + np.arange(n) * np.timedelta64(6, "m")
    rain = rng.lognormal(0.5, 1.0, n)
    b_true = np.where(np.arange(n) < n // 2, 1.6, 1.2)
    z = 250.0 * rain**b_true * 10 ** (rng.normal(0, 0.5, n) / 10)
    a, b = zr.dynamic_zr(times, z, rain, np.timedelta64(3, "h"))
    assert np.isnan(b[:5]).all()
    assert np.nanmedian(b[50:190]) == pytest.approx(1.6, abs=0.05)
    assert np.nanmedian(b[250:]) == pytest.approx(1.2, abs=0.05)
    assert np.nanmedian(a[250:]) == pytest.approx(250.0, rel=0.1)
    seconds = (times - times[0]) / np.timedelta64(1, "s")
    np.testing.assert_allclose(zr.dynamic_zr(seconds, z, rain, 3 * 3600.0)[1], b, equal_nan=True)
    fit = zr.fit_zr(z[300:330], rain[300:330])
    assert b[329] == pytest.approx(fit.relation.b, rel=1e-6)


def test_dynamic_zr_rejects_unsorted_times():
    with pytest.raises(ValueError, match="non-decreasing"):
        zr.dynamic_zr([0.0, 2.0, 1.0], [1, 2, 3], [1, 2, 3], 10.0)
