"""backbones of the imagery model stack."""
