"""registry_llm: a registry_core plugin, registered through the entry point ``llm``."""

__version__ = "0.1.0"
