"""weights components of registry_gfm: pretrained imagery checkpoints (keep this file light: no heavy imports)."""
