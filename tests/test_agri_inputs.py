"""Dead or stuck channels are refused before the model runs, naming the file and the channel."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from satpy_prenet.agri_files import AGRIFileError, inspect_agri_file
from satpy_prenet.channels import PAPER_BANDS


def _with_channel(source, tmp_path, edit):
    """A copy of an AGRI file whose C12 (10.8 um on FY-4A) counts are edited by ``edit(counts)``."""
    target = tmp_path / source.name
    shutil.copy(source, target)
    with h5py.File(target, "r+") as h5:
        counts = h5["NOMChannel12"]
        counts[...] = edit(counts[...], counts.attrs)
    return target


@pytest.mark.parametrize(("edit", "message"), [
    (lambda counts, attrs: np.full_like(counts, attrs["FillValue"][0]), "holds only fill values"),
    (lambda counts, attrs: np.where(counts == attrs["FillValue"][0], counts, 1234), r"holds the same count \(1234\)"),
])
def test_a_dead_or_stuck_channel_is_refused(agri_files, tmp_path, edit, message):
    bad = _with_channel(agri_files["FY-4A"], tmp_path, edit)
    with pytest.raises(AGRIFileError, match=rf"channel C12 \(10.8 um\) {message}") as error:
        inspect_agri_file(bad, required_bands=PAPER_BANDS)
    assert str(bad) in str(error.value)
    inspect_agri_file(bad, required_bands=["IR12.0"])  # a channel the model does not need is not checked


def test_a_channel_dead_on_part_of_the_image_is_accepted(agri_files, tmp_path):
    """Its fill pixels become NaN in satpy and are flagged invalid_input in precipitation_quality."""
    def blank_half(counts, attrs):
        counts = counts.copy()
        counts[: counts.shape[0] // 2] = attrs["FillValue"][0]
        return counts

    inspect_agri_file(_with_channel(agri_files["FY-4A"], tmp_path, blank_half), required_bands=PAPER_BANDS)
