# SPDX-License-Identifier: GPL-3.0-or-later
"""Simulated world and format-faithful file writers (no real FY-4 data are needed to run the project).

The physical recipe is in the project's design notes (SIMULATION.md). Typical use::

    from satpy_prenet.synthetic import World, scan_times, write_agri_l1

    world = World(seed=42)
    for scene in world.scenes(scan_times(start, 4), platform="FY-4B", window=(800, 1056, 1200, 1456)):
        write_agri_l1(scene, out_dir)
"""

from satpy_prenet.synthetic.agri_file import agri_filename, write_agri_l1
from satpy_prenet.synthetic.archive import Archive, simulate_archive
from satpy_prenet.synthetic.calibration import (
    bt_to_counts,
    calibration_table,
    counts_to_values,
    quantise_bt,
    quantise_reflectance,
    quantised_bt,
)
from satpy_prenet.synthetic.config import WorldConfig
from satpy_prenet.synthetic.dpr import DPRConfig, DPRObservation, observe_dpr
from satpy_prenet.synthetic.geometry import DISC_SIZE, SUBSATELLITE_LON, Window, disc_area
from satpy_prenet.synthetic.gmi import GMIConfig, GMIObservation, observe_gmi
from satpy_prenet.synthetic.gpm_file import gpm_filename, write_dpr_2a, write_gmi_1c
from satpy_prenet.synthetic.orbit import Overpass, gpm_overpasses
from satpy_prenet.synthetic.world import SimulatedScene, World, scan_times, simulate_scene, simulate_sequence

__all__ = [
    "DISC_SIZE",
    "Archive",
    "DPRConfig",
    "DPRObservation",
    "GMIConfig",
    "GMIObservation",
    "Overpass",
    "SUBSATELLITE_LON",
    "SimulatedScene",
    "Window",
    "World",
    "WorldConfig",
    "agri_filename",
    "bt_to_counts",
    "calibration_table",
    "counts_to_values",
    "disc_area",
    "gpm_filename",
    "gpm_overpasses",
    "observe_dpr",
    "observe_gmi",
    "quantise_bt",
    "quantise_reflectance",
    "quantised_bt",
    "scan_times",
    "simulate_archive",
    "simulate_scene",
    "simulate_sequence",
    "write_agri_l1",
    "write_dpr_2a",
    "write_gmi_1c",
]
