"""Training of PRE-Net weights (needs the ``training`` extra for the full stages)."""
