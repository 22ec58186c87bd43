# SPDX-License-Identifier: GPL-3.0-or-later
"""Training of PRE-Net weights (needs the ``training`` extra for the full stages)."""
