"""Fit a checkpoint's per-band slices to the data's bands: reorder, drop, or start new bands from the others.

The patch projection ``[D, C, t, p, p]`` has one input slice per band and the MAE's ``decoder_pred``
``[t*p*p*C, Dd]`` one output row per (t, p, q, band) with the band fastest; both follow the data's band
order after :func:`band_sources`. Bands compare by identity (``B8A`` of HLS S30 is ``nir08``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import torch

from registry_gfm.bands import band_key, compare_bands

__all__ = ["band_sources", "pick_channels", "pick_rows"]


def _fit_error(path: str, weights: Sequence[str], data: Sequence[str], detail: str, fix: str) -> ValueError:
    return ValueError(f"prithvi: the data's bands {list(data)} do not fit the bands {list(weights)} of {path}: "
                      f"{detail}; {fix}")


def band_sources(
    data: Sequence[str], weights: Sequence[str], band_map: Mapping[str, str] | None, allow_new: bool, path: str
) -> list[int | None]:
    """For each data band, the index of its band in the weights, or None for a new band (``allow_new``).

    Without ``band_map`` the data's known bands must be the weights' bands in their order; with it, each data
    band is ``band_map.get(band, band)`` of the weights, in any order (unused weights bands are dropped).
    """
    wkeys = [band_key(b) for b in weights]
    if band_map is not None:
        stray = [k for k in band_map if k not in data]
        unknown = [v for v in band_map.values() if band_key(v) not in wkeys]
        if stray or unknown:
            parts = [f"band_map names data band(s) {stray} the data lacks"] if stray else []
            parts += [f"band_map maps to {unknown}, which the weights lack"] if unknown else []
            raise _fit_error(path, weights, data, "; ".join(parts), "name data bands on the left, weights bands on "
                             "the right")
    wanted = [band_key(band_map.get(d, d)) if band_map is not None else band_key(d) for d in data]
    sources: list[int | None] = [wkeys.index(k) if k in wkeys else None for k in wanted]
    new = [d for d, s in zip(data, sources) if s is None]
    if new and not allow_new:
        raise _fit_error(path, weights, data, f"the weights have no band {new}",
                         "map them to a weights band with band_map (e.g. {'B8A': 'nir08'}), or set allow_new_bands = "
                         "true to start them from the other bands' slices")
    known = [s for s in sources if s is not None]
    if band_map is None and known != list(range(len(weights))):
        detail = str(compare_bands(weights, [d for d, s in zip(data, sources) if s is not None]) or "")
        raise _fit_error(path, weights, data, detail or "another order", "set band_map (e.g. {} to match the bands "
                         "by name in the data's order, dropping the weights' others) to reorder them")
    if len(set(known)) != len(known):
        raise _fit_error(path, weights, data, "two data bands map to the same weights band",
                         "map each data band to its own weights band")
    dropped = [w for i, w in enumerate(weights) if i not in known]
    if dropped:
        warnings.warn(f"prithvi: the data lacks the weights' band(s) {dropped} of {path}; their slices of the "
                      "patch projection are dropped", stacklevel=3)
    if new:
        warnings.warn(f"prithvi: data band(s) {new} are not in the weights {list(weights)} of {path}; their "
                      "patch-projection slices and normalisation statistics start as the mean of the weights' bands' "
                      "(allow_new_bands)",
                      stacklevel=3)
    return sources


def pick_channels(weight: torch.Tensor, sources: Sequence[int | None], dim: int) -> torch.Tensor:
    """``weight`` with its slices along ``dim`` in data order; a new band's slice is the mean of all slices."""
    if list(sources) == list(range(weight.shape[dim])):
        return weight
    mean = weight.mean(dim=dim, keepdim=True)
    slices = [mean if s is None else weight.narrow(dim, s, 1) for s in sources]
    return torch.cat(slices, dim=dim)


def pick_rows(pred: torch.Tensor, sources: Sequence[int | None], channels: int) -> torch.Tensor:
    """``decoder_pred`` weight ``[t*p*p*C, Dd]`` or bias ``[t*p*p*C]`` with its band-fastest rows in data order."""
    grouped = pred.reshape(pred.shape[0] // channels, channels, *pred.shape[1:])
    picked = pick_channels(grouped, sources, dim=1)
    return picked.reshape(-1, *pred.shape[1:])
