"""registry_geoextras: an example third-party plugin for registry-gfm's imagery stack.

It adds ``rope-2d`` (axial rotary positions over the patch grid), replaces ``gfm:patch`` with a patch
tokenizer that normalises each token and can append spectral-index channels, and declares the
``spectral_index`` kind with its first component, ``ndvi``.
"""

__version__ = "0.1.0"
