# SPDX-License-Identifier: GPL-3.0-or-later
"""trollflow2 workers of satpy-prenet: `prenet` prepares and checks a job, `delivery` writes and announces."""
