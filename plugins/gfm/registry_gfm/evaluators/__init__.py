"""evaluators components of registry_gfm (keep this file light: no heavy imports)."""
