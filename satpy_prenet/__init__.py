# SPDX-License-Identifier: GPL-3.0-or-later
"""PRE-Net precipitation retrieval from FY-4A/FY-4B AGRI as a satpy plugin.

satpy finds this package through its ``satpy.composites`` and ``satpy.enhancements`` entry points and
reads the YAML under ``etc/``. Importing it stays cheap: torch is imported only when a product is made.
"""

__version__ = "0.1.0"
