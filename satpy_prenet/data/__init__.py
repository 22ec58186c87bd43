# SPDX-License-Identifier: GPL-3.0-or-later
"""Training-side data code: readers of the reference data sets (no satpy here).

``satpy_prenet.data.gpm`` reads GPM PPS swath files: GMI level 1C brightness temperatures and DPR level 2A Ku-band
reflectivity profiles, the passive-microwave and radar modalities of the PRE-Net teacher.
``satpy_prenet.data.cldas`` reads CLDAS-V2.0 hourly precipitation, the ground truth. Both raise
`satpy_prenet.data.errors.SourceFileError` subclasses naming the file and the problem.
"""
