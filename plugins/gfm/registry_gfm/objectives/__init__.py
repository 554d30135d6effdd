"""objectives of the imagery model stack."""
