"""objectives components of registry_llm (keep this file light: no heavy imports)."""
