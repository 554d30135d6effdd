"""Gathering a tensor's rows from every rank with gradients flowing back to the rank that made them."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch.nn import functional as F

__all__ = ["gather_views", "group_size"]


def group_size() -> int:
    """Ranks in the default process group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_views(rows: torch.Tensor) -> tuple[torch.Tensor, int] | None:
    """Every rank's ``rows`` ``(m_r, k)`` stacked in rank order, and where this rank's start; None when no rank
    has a row. A collective (every rank calls it); ranks may hold different numbers of rows (padded to the
    largest for the gather). The backward pass sums each rank's gradient of the result into the rows of the
    rank that made them; a rank with no rows reaches that backward (a collective too) only when its empty
    ``rows`` are still joined to the graph.
    """
    world, rank = dist.get_world_size(), dist.get_rank()
    mine = torch.tensor([rows.shape[0]], device=rows.device)
    counts = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(counts, mine)
    sizes = [int(c) for c in counts]
    if sum(sizes) == 0:
        return None
    sent = F.pad(rows, (0, 0, 0, max(sizes) - rows.shape[0]))
    parts = _GatherRows.apply(sent).chunk(world)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)]), sum(sizes[:rank])


class _GatherRows(torch.autograd.Function):
    """All ranks' equal-sized ``rows`` concatenated in rank order; backward sums the result's gradient over the
    ranks (one all-reduce, which every backend has) and hands each rank the part of its own rows."""

    @staticmethod
    def forward(ctx: Any, rows: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(rows) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, rows.contiguous())
        ctx.rank, ctx.size = dist.get_rank(), rows.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        total = grad.contiguous().clone()
        dist.all_reduce(total)
        return total[ctx.rank * ctx.size : (ctx.rank + 1) * ctx.size]
