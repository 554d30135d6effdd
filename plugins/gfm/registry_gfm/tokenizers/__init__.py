"""tokenizers of the imagery model stack."""
