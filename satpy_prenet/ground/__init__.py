# SPDX-License-Identifier: GPL-3.0-or-later
"""Ground radar and rain-gauge retrievals: Z-R relations, gauge-tracking filters and drop-spectrum models."""
