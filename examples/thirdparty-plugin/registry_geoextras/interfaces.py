"""The interface of the ``spectral_index`` kind this plugin declares (no heavy imports)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["SpectralIndex"]


@runtime_checkable
class SpectralIndex(Protocol):
    """One index channel computed per pixel from physical band values (reflectance or DN, not standardised).

    ``bands`` lists each input the index reads as the band names it accepts, best first (identity as
    registry-gfm's band catalog keys them: ``B8A`` is ``nir08``); ``values`` ``(..., len(bands))`` holds
    them in that order and the result is ``(...)``, finite everywhere.
    """

    #: The index's short name, as the ``indices`` option of the ``patch`` tokenizer names it.
    name: str
    #: For each input, the accepted band names (the first one the data has is used).
    bands: tuple[tuple[str, ...], ...]

    def __call__(self, values: Any) -> Any: ...
