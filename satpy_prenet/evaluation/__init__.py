# SPDX-License-Identifier: GPL-3.0-or-later
"""Skill scores of precipitation retrievals."""
