"""positions of the imagery model stack."""
