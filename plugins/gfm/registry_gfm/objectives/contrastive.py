"""``contrastive``: InfoNCE between two views of one place (SimCLR, Chen et al. 2020; NT-Xent loss).

Views. When the batch's chips have two or more time slices (the tokens' ``t`` positions go past 0), the two
views are two different dates of the same place: per sample, two time slices drawn at random among those
with usable pixels (seasonal positives, as in SeCo); each date is encoded as a one-slice chip (token
``t = 0``) carrying its own frames' ``time`` for the time encoding. Otherwise (or with ``views = "augmentations"``)
they are two random augmentations of the one chip: a square crop of whole patches (not resized, so the
ground-sample distance stays true; the encoder takes any grid), a horizontal flip and a multiple of 90
degrees of rotation, done on pixels: the batch's ``patches`` and ``pixel_valid`` are unpatchified,
augmented and patchified again, and the positions are those of the view's own grid.

Each view goes through the encoder (``parts.embed`` -> ``parts.backbone`` with ``parts.positional``), is
pooled (the cls token when the backbone has one, else the mean of the patch tokens), projected by an MLP
head and L2-normalised. The loss is SimCLR's: over the ``2M x 2M`` cosine similarities of the ``M`` kept
samples' ``2M`` views, divided by ``temperature``, each view's cross-entropy of picking its partner among
the ``2M - 1`` others (itself excluded), averaged over all ``2M`` views -- symmetric in the two views.

Negatives across ranks. Under DDP (training only) each rank's views are gathered from every rank, so the
negatives are the whole global batch, as one process with the global batch would see them: each rank takes
the loss of its own ``2m`` rows against all ``2M`` views, gradients flow back to the rank that made each view
(``torch.distributed.nn.functional.all_gather``), and the trainer's weighting by ``pairs`` makes the step the
one big batch's. The ``bn-relu`` head normalises over each rank's own views (as one process would with
micro-batches); ``head = "gelu"`` has no batch statistics. Validation keeps each rank's batch for negatives.

Invalid pixels. A view whose valid-pixel fraction is at most ``min_valid`` (by default: a view with no
usable pixel) is left out, and its sample with it: that sample is neither an anchor, a positive nor a
negative. A batch with nothing left gives a zero loss that still backpropagates.

Randomness comes from ``generator`` when set (tests), else torch's RNG; in eval mode every pass draws the
same views from a generator seeded with ``eval_seed``, so validation losses compare across steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from registry_core.interfaces import ModelParts
from registry_gfm.objectives._ranks import gather_views, group_size
from registry_gfm.objectives._views import (
    View,
    apply_augmentation,
    draw_augmentation,
    draw_crop_side,
    pick_frames,
    take_frames,
)
from registry_gfm.objectives.specs import ContrastiveConfig
from registry_gfm.positions.placement import Placement
from registry_gfm.tokenizers.patch_layout import (
    grid_from_positions,
    patch_grid,
    patchify,
    token_grid_positions,
    unpatchify,
)

__all__ = ["ContrastiveObjective", "build", "info_nce", "info_nce_across_ranks"]


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """SimCLR's NT-Xent of paired embeddings ``z1``, ``z2`` ``(M, d)`` (L2-normalised by the caller).

    Rows ``[z1; z2]`` give the ``2M x 2M`` similarities ``z zᵀ / temperature`` with the diagonal removed; row
    ``i``'s positive is its partner (``i ± M``). Returns the mean cross-entropy over the ``2M`` rows and the
    share of rows whose most similar other row is the partner (top-1 accuracy).
    """
    m = z1.shape[0]
    z = torch.cat([z1, z2]).float()
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * m, dtype=torch.bool, device=sim.device), float("-inf"))
    target = torch.cat([torch.arange(m, 2 * m), torch.arange(m)]).to(sim.device)
    loss = F.cross_entropy(sim, target)
    accuracy = (sim.detach().argmax(dim=1) == target).float().mean()
    return loss, accuracy


def info_nce_across_ranks(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``info_nce`` over every rank's views (a collective: every rank calls it). This rank's ``2m`` rows are
    scored against the ``2M`` views of all ranks; the mean over this rank's rows comes back with its top-1
    accuracy and ``M``. Weighing each rank's loss by its ``m`` gives the loss of :func:`info_nce` over the
    ``M`` pairs at once, and the gradients flow back to the ranks that made the views. A rank with ``m = 0``
    returns a zero loss still joined to the gather, so the collectives of the backward pass stay in step on
    every rank (its empty ``z1``, ``z2`` should carry the graph of its parameters, as the objective's do).
    """
    m, d = z1.shape
    views = gather_views(torch.cat([z1, z2], dim=1))
    if views is None:  # no rank has a pair
        return torch.cat([z1, z2]).sum() * 0.0, torch.zeros((), device=z1.device), 0
    rows, offset = views  # (M, 2d): every rank's (z1 | z2), in rank order; this rank's start at ``offset``
    total = rows.shape[0]
    z = torch.cat([rows[:, :d], rows[:, d:]]).float()  # (2M, d) as info_nce orders them: first views, then second
    if m == 0:
        return z.sum() * 0.0, torch.zeros((), device=z1.device), total
    mine = torch.cat([torch.arange(offset, offset + m), torch.arange(total + offset, total + offset + m)]).to(z.device)
    sim = z[mine] @ z.T / temperature  # (2m, 2M)
    sim = sim.masked_fill(F.one_hot(mine, 2 * total).bool(), float("-inf"))
    target = torch.cat([mine[m:], mine[:m]])
    loss = F.cross_entropy(sim, target)
    accuracy = (sim.detach().argmax(dim=1) == target).float().mean()
    return loss, accuracy, total


class ContrastiveObjective(nn.Module):
    """``objective(parts, batch) -> (loss, metrics)`` over ``patch`` tokens; see the module docstring.

    Metrics: ``loss``, ``accuracy`` (top-1 of picking the partner view), ``dates`` (1 when the views were two
    dates, 0 for augmentations: averaged, the share of batches on dates), ``pairs`` (samples in the loss).
    ``last_views`` names the last batch's views (``"dates"`` or ``"augmentations"``).
    The projection head (``projector``) is made in ``bind``, sized from the backbone's width.
    """

    #: ``pairs`` counts the samples the loss is a mean over: the trainer sums it and weighs the loss by it.
    count_metrics = ("pairs",)
    loss_weight = "pairs"

    def __init__(self, config: ContrastiveConfig) -> None:
        super().__init__()
        self.config = config
        self.generator: torch.Generator | None = None
        #: Seed of the views drawn in eval mode (validation, evaluators), independent of training's RNG.
        self.eval_seed = 0
        self.last_views: str | None = None

    def bind(self, parts: ModelParts) -> None:
        cfg, embed = self.config, parts.embed
        for attr in ("patch", "tubelet", "channels"):
            if not hasattr(embed, attr):
                raise TypeError("objective 'contrastive' needs a patch embedding (tokenizer 'patch'); "
                                f"got {type(embed).__name__}")
        self.patch, self.tubelet, self.channels = int(embed.patch), int(embed.tubelet), int(embed.channels)
        self.groups = int(getattr(embed, "num_groups", 1))
        dim = cfg.embed_dim or int(parts.backbone.embed_dim)
        prefix = int(getattr(parts.backbone, "num_prefix_tokens", 0))
        if cfg.pool == "cls" and not prefix:
            raise ValueError("objective 'contrastive': pool = 'cls' needs a backbone with a cls token "
                             "(vit cls_token = true); use pool = 'mean' or 'auto'")
        self.prefix = prefix
        self.pool = ("cls" if prefix else "mean") if cfg.pool == "auto" else cfg.pool
        hidden = cfg.hidden_dim or dim
        self.projector = (
            nn.Sequential(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, cfg.projection_dim))
            if cfg.head == "bn-relu" else
            nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, cfg.projection_dim))
        )

    def _check_bound(self) -> None:
        if not hasattr(self, "projector"):
            raise RuntimeError("objective 'contrastive' is not bound; call objective.bind(parts) first")

    def _rng(self) -> torch.Generator | None:
        # Evaluation views are fixed (seeded afresh each pass), so validation losses compare across steps.
        return self.generator if self.training else torch.Generator().manual_seed(self.eval_seed)

    # -- the views ----------------------------------------------------------------------------------

    def views(self, batch: Mapping[str, Any], generator: torch.Generator | None = None) -> tuple[View, View, str]:
        """The batch's two views and what they are (``"dates"`` or ``"augmentations"``)."""
        self._check_bound()
        cfg, p, tub = self.config, self.patch, self.tubelet
        gen = self._rng() if generator is None else generator
        patches = batch["patches"]
        b, n, _ = patches.shape
        grid = grid_from_positions(torch.as_tensor(batch["positions"]), n, "objective 'contrastive'")
        chips = unpatchify(patches, p, tub, self.channels, grid)
        given = batch.get("pixel_valid")
        pixel_valid = (torch.ones(b, n, tub * p * p, device=patches.device) if given is None
                       else given.to(patches.device, patches.dtype))
        valid = unpatchify(pixel_valid, p, tub, 1, grid)  # (B, 1, T, H, W)
        time = batch.get("time")
        time = None if time is None else torch.as_tensor(time).reshape(b, -1)
        kind = cfg.views if cfg.views != "auto" else ("dates" if grid[0] >= 2 else "augmentations")
        if kind == "dates":
            if grid[0] < 2:
                raise ValueError(f"objective 'contrastive': views = 'dates' needs chips of >= 2 time slices "
                                 f"(frames / tubelet); the batch's grid is {grid[0]}x{grid[1]}x{grid[2]}")
            frame_valid = valid.reshape(b, grid[0], -1).mean(dim=2)
            pair = pick_frames(frame_valid, cfg.min_valid, gen)
            out = []
            for k in range(2):
                idx = pair[:, k]
                t = None if time is None else take_frames(time[:, None, :, None, None], idx, tub)[:, 0, :, 0, 0]
                out.append(View(take_frames(chips, idx, tub), take_frames(valid, idx, tub), t, idx.to(patches.device)))
            return out[0], out[1], kind
        two = []
        side = draw_crop_side(grid[1:], cfg.crop_min, gen)  # one side for both views: they stack into one pass
        for _ in range(2):
            aug = draw_augmentation(b, grid[1:], side, cfg.flips, cfg.rotations, gen)
            two.append(View(apply_augmentation(chips, aug, p), apply_augmentation(valid, aug, p), time))
        return two[0], two[1], kind

    # -- the forward pass ---------------------------------------------------------------------------

    def encode(self, parts: ModelParts, view: View, batch: Mapping[str, Any], repeat: int = 1) -> torch.Tensor:
        """``(B, D)`` pooled encoder features of ``view``; its chips may stack ``repeat`` views of the batch
        (the chip metadata ``center_lonlat`` and ``gsd`` is repeated to match)."""
        self._check_bound()
        x = patchify(view.chips, self.patch, self.tubelet)
        grid = patch_grid(view.chips.shape[2:], self.patch, self.tubelet)
        positions = token_grid_positions(grid, device=x.device).repeat(self.groups, 1)

        def tiled(key: str) -> torch.Tensor | None:
            value = batch.get(key)
            return None if value is None else torch.cat([torch.as_tensor(value)] * repeat)

        where = Placement(positions, view.time, tiled("center_lonlat"), tiled("gsd"))
        feats = parts.backbone(parts.embed(x), parts.positional, where)
        if self.pool == "cls":
            return feats[:, 0]
        return feats[:, self.prefix:].mean(dim=1)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """``(M, projection_dim)`` L2-normalised projections of pooled features ``(M, D)``."""
        self._check_bound()
        return F.normalize(self.projector(features), dim=-1)

    def forward(self, parts: ModelParts, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        v1, v2, kind = self.views(batch)
        self.last_views = kind
        both = View(torch.cat([v1.chips, v2.chips]), torch.cat([v1.valid, v2.valid]),
                    None if v1.time is None or v2.time is None else torch.cat([v1.time, v2.time]))
        h1, h2 = self.encode(parts, both, batch, repeat=2).chunk(2)  # both views in one encoder pass
        floor = self.config.min_valid
        keep = ((v1.valid_fraction() > floor) & (v2.valid_fraction() > floor)).to(h1.device)
        m = int(keep.sum())
        dates = 1.0 if kind == "dates" else 0.0
        if self.training and group_size() > 1:
            return self._across_ranks(h1, h2, keep, m, dates)
        if m == 0:
            # nothing usable: a zero that keeps every parameter in the graph, so backward (and DDP) still work
            loss = (h1.sum() + h2.sum() + sum(q.sum() for q in self.projector.parameters())) * 0.0
            return loss, {"loss": 0.0, "accuracy": 0.0, "dates": dates, "pairs": 0.0}
        z = self.project(torch.cat([h1[keep], h2[keep]]))
        loss, accuracy = info_nce(z[:m], z[m:], self.config.temperature)
        return loss, {"loss": float(loss.detach()), "accuracy": float(accuracy), "dates": dates, "pairs": float(m)}

    def _across_ranks(self, h1: torch.Tensor, h2: torch.Tensor, keep: torch.Tensor, m: int,
                      dates: float) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss with every rank's views as negatives (training under DDP); see ``info_nce_across_ranks``."""
        # A zero joined to every parameter: with it a rank with nothing to project still sends views in the graph.
        anchor = (h1.sum() + h2.sum() + sum(q.sum() for q in self.projector.parameters())) * 0.0
        if m:
            z = self.project(torch.cat([h1[keep], h2[keep]]))
            z1, z2 = z[:m], z[m:]
        else:  # nothing to project (BatchNorm needs rows): empty views that carry the parameters' graph
            z1 = z2 = h1.new_zeros(0, self.config.projection_dim) + anchor
        loss, accuracy, _ = info_nce_across_ranks(z1, z2, self.config.temperature)
        return loss, {"loss": float(loss.detach()), "accuracy": float(accuracy), "dates": dates, "pairs": float(m)}


def build(config: ContrastiveConfig) -> ContrastiveObjective:
    return ContrastiveObjective(config)
