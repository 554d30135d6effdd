"""registry_chartok: an example third-party plugin (a character-level tokenizer)."""

__version__ = "0.1.0"
