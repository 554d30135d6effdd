"""``sincos-2d`` and ``sincos-3d``: fixed patch positions, recomputed for any grid, plus optional metadata.

The tables use ``registry_core.nn.sincos_encoding`` (``[sin | cos]`` blocks per axis). 2-D is MAE's
``get_2d_sincos_pos_embed`` (first half the column w, second half the row h); 3-D is Prithvi's split
(w 6/16, h 6/16, t 4/16, concatenated w, h, t). The optional encodings: Scale-MAE's GSD scaling of the
patch coordinates, and Prithvi-EO-2.0's time (year, day of year) and location (lat, lon) encodings, each
times a learned scale that starts at 0.1.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import torch
from torch import nn

from registry_core.nn import grid_positions, sincos_encoding
from registry_gfm.positions.placement import Placement, as_placement
from registry_gfm.positions.specs import MetadataOptions, SinCos2DConfig, SinCos3DConfig

__all__ = ["SinCos2D", "SinCos3D", "build_2d", "build_3d", "sincos_2d_table", "sincos_3d_table",
           "time_features"]

_UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _dims_2d(dim: int) -> tuple[int, int]:
    if dim % 4:
        raise ValueError(f"sincos-2d needs embed_dim divisible by 4, got {dim}")
    return dim // 2, dim // 2


def _dims_3d(dim: int) -> tuple[int, int, int]:
    if dim % 16:
        raise ValueError(f"sincos-3d needs embed_dim divisible by 16 (w 6/16, h 6/16, t 4/16), got {dim}")
    return dim // 16 * 6, dim // 16 * 6, dim // 16 * 4


def _with_cls(table: torch.Tensor, cls_token: bool) -> torch.Tensor:
    return torch.cat([table.new_zeros(1, table.shape[1]), table]) if cls_token else table


def sincos_2d_table(gh: int, gw: int, dim: int, cls_token: bool = False, base: float = 10000.0) -> torch.Tensor:
    """``(gh·gw [+1], dim)``: MAE's 2-D table (rows in row-major patch order; a zero first row with cls)."""
    table = sincos_encoding(grid_positions((gh, gw)), _dims_2d(dim), axes=(1, 0), base=base)
    return _with_cls(table, cls_token)


def sincos_3d_table(gt: int, gh: int, gw: int, dim: int, cls_token: bool = False,
                    base: float = 10000.0) -> torch.Tensor:
    """``(gt·gh·gw [+1], dim)``: Prithvi's 3-D table over (t, h, w), channels w 6/16, h 6/16, t 4/16."""
    table = sincos_encoding(grid_positions((gt, gh, gw)), _dims_3d(dim), axes=(2, 1, 0), base=base)
    return _with_cls(table, cls_token)


def time_features(seconds: torch.Tensor) -> torch.Tensor:
    """``(..., 2)`` float (year, day of year 1..366) of Unix times in seconds (UTC)."""
    flat = [(_UNIX_EPOCH + dt.timedelta(seconds=int(s))).timetuple() for s in seconds.reshape(-1).tolist()]
    out = torch.tensor([(t.tm_year, t.tm_yday) for t in flat], dtype=torch.float64)
    return out.reshape(*seconds.shape, 2)


class _SinCos(nn.Module):
    """Shared forward: fixed grid encoding + optional GSD scaling, time and location encodings."""

    mode = "additive"
    grid = 2
    name = "sincos"

    def __init__(self, embed_dim: int, options: MetadataOptions | None = None) -> None:
        super().__init__()
        options = options or MetadataOptions()
        #: The channels the fixed table fills (the first ones); the others get no position (SatMAE).
        self.table_dim = options.table_dim or embed_dim
        if self.table_dim > embed_dim:
            raise ValueError(f"positional encoder {self.name!r}: table_dim {self.table_dim} is wider than embed_dim "
                             f"{embed_dim}")
        self.check_dim(self.table_dim)
        self._options = options
        self.embed_dim = embed_dim
        self.gsd_reference = options.gsd_reference
        self.base = options.base
        self.time_encoding, self.location_encoding = options.time_encoding, options.location_encoding
        if options.time_encoding:
            self.time_scale = nn.Parameter(torch.full((1,), 0.1))
        if options.location_encoding:
            self.location_scale = nn.Parameter(torch.full((1,), 0.1))

    @staticmethod
    def check_dim(dim: int) -> tuple[int, ...]:
        """The channels of each axis at this width; raises when the table cannot be split so."""
        return (dim,)

    def encode(self, positions: torch.Tensor) -> torch.Tensor:
        """``(…, N, dim)`` encoding of (t, h, w) coordinates ``(…, N, 3)`` (float coordinates allowed)."""
        raise NotImplementedError

    def resized(self, embed_dim: int) -> _SinCos:
        """The same encoder, metadata options included, at another width (the MAE decoder's positions; its table
        fills every channel)."""
        return type(self)(embed_dim, dataclasses.replace(self._options, table_dim=None))

    def _padded(self, table: torch.Tensor) -> torch.Tensor:
        """The table's ``table_dim`` channels followed by zeros up to ``embed_dim``."""
        extra = self.embed_dim - self.table_dim
        return torch.nn.functional.pad(table, (0, extra)) if extra else table

    def _coords(self, where: Placement) -> torch.Tensor:
        pos = where.positions
        if pos.shape[-1] == 2:  # (h, w) only: frame 0
            pos = torch.cat([torch.zeros_like(pos[..., :1]), pos], dim=-1)
        if pos.shape[-1] != 3:
            raise ValueError(f"positional encoder {self.name!r}: positions must be (N, 3) or (B, N, 3) (t, h, w) "
                             f"patch coordinates, got shape {tuple(pos.shape)}")
        if self.gsd_reference is None:
            return pos
        if where.gsd is None:
            raise ValueError(f"positional encoder {self.name!r}: gsd_reference is set but the batch has no 'gsd' "
                             "(the chip's ground-sample distance)")
        ratio = (where.gsd.to(torch.float64).reshape(-1) / self.gsd_reference)[:, None, None]  # (B, 1, 1)
        scaled = pos.to(torch.float64).expand(ratio.shape[0], *pos.shape[-2:]).clone()
        scaled[..., 1:] *= ratio  # Scale-MAE: coordinates in units of the reference GSD
        return scaled

    def forward(self, x: torch.Tensor, positions: Any = None) -> torch.Tensor:
        where = as_placement(positions)
        if where is None:
            raise ValueError(f"positional encoder {self.name!r} needs the patch positions (the tokenizer's "
                             "'positions'): a patch grid cannot be guessed from the token count")
        out = x + self.encode(self._coords(where).to(x.device)).to(x.dtype)
        if self.time_encoding:
            out = out + self._time(where, x)
        if self.location_encoding:
            out = out + self._location(where, x)
        return out

    def _time(self, where: Placement, x: torch.Tensor) -> torch.Tensor:
        if where.time is None:
            raise ValueError(f"positional encoder {self.name!r}: time_encoding needs the frames' 'time'")
        feats = time_features(where.time.cpu()).reshape(where.time.shape[0], -1, 2)  # (B, T, 2)
        pos = where.positions
        t_idx = pos[..., 0].long()
        if t_idx.dim() == 1:
            t_idx = t_idx.expand(feats.shape[0], -1)
        frames = feats.shape[1]
        step = max(1, frames // max(int(t_idx.max()) + 1, 1))  # tubelets: the first frame of each
        feats = torch.gather(feats, 1, (t_idx.cpu() * step).clamp(max=frames - 1)[..., None].expand(-1, -1, 2))
        d_year = self.embed_dim // 2
        enc = torch.cat([sincos_encoding(feats[..., 0], (d_year,)), sincos_encoding(feats[..., 1], (self.embed_dim - d_year,))],
                        dim=-1)
        return self.time_scale * enc.to(x.device, x.dtype)

    def _location(self, where: Placement, x: torch.Tensor) -> torch.Tensor:
        if where.lonlat is None:
            raise ValueError(f"positional encoder {self.name!r}: location_encoding needs the chip's 'center_lonlat'")
        lonlat = where.lonlat.reshape(-1, 2).cpu()
        d_lat = self.embed_dim // 2
        enc = torch.cat([sincos_encoding(lonlat[:, 1:2], (d_lat,)), sincos_encoding(lonlat[:, 0:1], (self.embed_dim - d_lat,))],
                        dim=-1)  # (B, 1, D): latitude half, then longitude
        return self.location_scale * enc.to(x.device, x.dtype)


class SinCos2D(_SinCos):
    """MAE's fixed 2-D sin-cos positions; frames share a position (use ``sincos-3d`` to tell them apart)."""

    name = "sincos-2d"
    check_dim = staticmethod(_dims_2d)

    def encode(self, positions: torch.Tensor) -> torch.Tensor:
        return self._padded(sincos_encoding(positions[..., 1:], _dims_2d(self.table_dim), axes=(1, 0),
                                            base=self.base))


class SinCos3D(_SinCos):
    """Prithvi's fixed 3-D sin-cos positions over (t, h, w)."""

    grid = 3
    name = "sincos-3d"
    check_dim = staticmethod(_dims_3d)

    def encode(self, positions: torch.Tensor) -> torch.Tensor:
        return self._padded(sincos_encoding(positions, _dims_3d(self.table_dim), axes=(2, 1, 0), base=self.base))


def _width(config: SinCos2DConfig | SinCos3DConfig) -> int:
    if config.embed_dim is None:
        raise ValueError(f"{type(config).__name__}: embed_dim is not set (compose with a backbone, or set it)")
    return config.embed_dim


def build_2d(config: SinCos2DConfig) -> SinCos2D:
    return SinCos2D(_width(config), config)


def build_3d(config: SinCos3DConfig) -> SinCos3D:
    return SinCos3D(_width(config), config)
