# SPDX-License-Identifier: GPL-3.0-or-later
"""PRE-Net in pure torch: the student, the multimodal teacher and the inference wrapper."""

from satpy_prenet.model.comwe import CoMWE, coordinated_mask
from satpy_prenet.model.config import PRESETS, PRENetConfig, TeacherConfig, preset, teacher_preset
from satpy_prenet.model.inference_form import fold_batch_norms, inference_form
from satpy_prenet.model.prenet import PRENet, PRENetOutput
from satpy_prenet.model.retriever import PrecipitationRetriever
from satpy_prenet.model.teacher import MultimodalTeacher, TeacherOutput
from satpy_prenet.model.wavelet import haar_dwt2d

__all__ = [
    "PRESETS",
    "CoMWE",
    "MultimodalTeacher",
    "PRENet",
    "PRENetConfig",
    "PRENetOutput",
    "PrecipitationRetriever",
    "TeacherConfig",
    "TeacherOutput",
    "coordinated_mask",
    "fold_batch_norms",
    "haar_dwt2d",
    "inference_form",
    "preset",
    "teacher_preset",
]
