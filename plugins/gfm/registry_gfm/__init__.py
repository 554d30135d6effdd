"""registry_gfm: a registry_core plugin, registered through the entry point ``gfm``."""

__version__ = "0.1.0"
