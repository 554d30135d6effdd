"""A pretrained imagery run's model, for the report: its 2-D positional table and its ViT's attention on a chip.

The run folder is loaded (``Pipeline.load``) and one real validation chip read from its data source (the
most complete of the first few). The positional table is what the trained encoder adds to each patch of
that chip's grid, one small map per embedding dimension; the attention weights are those of the backbone's
last layer on all of the chip's patches (no masking), recomputed from its queries and keys
(``registry_core.nn.record_attention``). A finetuning run (with a ``head``) is skipped: its encoder and
positions are the pretraining run's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from registry_core import Pipeline
from registry_core.report import ReportFigure, ReportRun
from registry_core.report.figures import Heatmap, RecordedAttention, attention_figure, heatmaps
from registry_gfm.batches import band_names, chips_of, collate
from registry_gfm.positions.placement import placement_of
from registry_gfm.render import rgb_indices, stretch
from registry_gfm.tokenizers.patch_layout import grid_from_positions

__all__ = ["model_figures"]

#: Validation chips looked at to pick the most complete one.
CANDIDATES: Final = 16
#: Embedding dimensions drawn in the positional figure (those that vary most over the chip's grid).
DIMENSIONS: Final = 16


def _chip(pipeline: Any) -> dict[str, Any]:
    """A batch of one real chip: the validation item with the largest valid share among the first few."""
    dataset = pipeline.data.dataset("val")
    if len(dataset) == 0:
        dataset = pipeline.data.dataset("train")
    if len(dataset) == 0:
        raise ValueError("the run's data source serves no chip in 'val' or 'train'")
    items = [dataset[i] for i in range(min(CANDIDATES, len(dataset)))]
    best = max(items, key=lambda item: float(torch.as_tensor(item.get("valid_fraction", 1.0)).float().mean()))
    return collate([best])


def _rgb(pipeline: Any, batch: dict[str, Any], grid: tuple[int, int, int]) -> np.ndarray:
    """The chip's first frame as a stretched RGB image ``(H, W, 3)``."""
    chips = chips_of(batch["patches"].float(), pipeline.parts.embed, grid)  # (1, C, T, H, W)
    chip = chips[0, :, 0].numpy()
    idx = list(rgb_indices(band_names(pipeline, chip.shape[0])))
    return np.asarray(stretch(chip[idx]).transpose(1, 2, 0))


def _positions_figure(run: ReportRun, pipeline: Any, batch: dict[str, Any], grid: tuple[int, int, int],
                      out_dir: Path) -> ReportFigure | None:
    """Selected dimensions of the table the encoder adds on the chip's patch grid; None unless additive."""
    positional = pipeline.parts.positional
    if positional is None or getattr(positional, "mode", None) != "additive":
        return None
    tokens = int(batch["patches"].shape[1])
    dim = int(pipeline.parts.backbone.embed_dim)
    with torch.no_grad():
        table = positional(torch.zeros(1, tokens, dim), placement_of(batch))[0]  # (N, D): what it adds per patch
    _, gh, gw = grid
    maps = table[: gh * gw].reshape(gh, gw, dim).numpy()  # frame 0 of the first band group
    # the dimensions that vary most over this grid (slow frequencies look flat on a few patches)
    dims = sorted(int(d) for d in np.argsort(-maps.reshape(gh * gw, dim).var(axis=0), kind="stable")[:DIMENSIONS])
    panels = [Heatmap(f"dim {d}", maps[:, :, d], colorbar=False, ticks=False, square=True) for d in dims]
    name = str(run.slot("positional").get("use", type(positional).__name__))
    image = heatmaps(out_dir / f"{run.label}-positions-2d.png", panels, title=f"{run.name}: 2-D positions ({name})",
                     columns=8, cmap="RdBu_r", vmin=-1.0, vmax=1.0, panel_size=1.5)
    return ReportFigure(
        "Positional encodings", f"{run.label}: 2-D positional encoding ({name})",
        f"The {dim}-wide vector {name} adds to each patch of a {gh} x {gw} patch grid, one map per embedding dimension "
        f"({len(dims)} of {dim}: those that vary most over the grid; blue -1, red +1). In sin-cos tables the first "
        "half of the dimensions waves along x, the second along y.", image)


def _attention_panels(pipeline: Any, batch: dict[str, Any], grid: tuple[int, int, int],
                      recorded: RecordedAttention) -> list[list[Heatmap]]:
    """The chip and each head's full attention matrix; with a cls token, its attention over the patch grid."""
    probs = recorded.weights  # (H, P + N, P + N)
    prefix = int(getattr(pipeline.parts.backbone, "num_prefix_tokens", 0))
    _, gh, gw = grid
    first = [Heatmap("chip (RGB)", _rgb(pipeline, batch, grid), colorbar=False, ticks=False)]
    # the colour scale stops at the 99th percentile of patch-to-patch weights: a cls "sink" would hide the rest
    top = [float(np.percentile(probs[h][prefix:, prefix:], 99)) for h in range(probs.shape[0])]
    first += [Heatmap(f"head {h}", np.minimum(probs[h], top[h]), "key token", "query token")
              for h in range(probs.shape[0])]
    if not prefix:
        return [first]
    cls = probs[:, 0, prefix:].reshape(probs.shape[0], -1, gh, gw).mean(axis=1)  # (H, gh, gw); groups averaged
    # no colour bars here (each costs a layout pass): brighter is more attention, as the caption says
    second = [Heatmap("cls, mean of heads", cls.mean(axis=0), colorbar=False, ticks=False, square=True)]
    second += [Heatmap(f"cls, head {h}", cls[h], colorbar=False, ticks=False, square=True) for h in range(cls.shape[0])]
    return [first, second]


def _attention_caption(prefix: int, grid: tuple[int, int, int], recorded: RecordedAttention) -> str:
    """What the attention figure shows, after "... of the trained <kind> <backbone> "."""
    _, gh, gw = grid
    cls_note = (f"; then (panels \"cls\") the cls token's attention over the {gh} x {gw} patch grid, brighter is more"
                if prefix else "")
    return (f"on one validation chip ({recorded.weights.shape[-1]} tokens{', cls first' if prefix else ''}), per "
            "head: every token attends to every other, before and after it in patch order (colours stop at the "
            f"99th percentile of patch-to-patch weights){cls_note}.")


def _attention_figure(run: ReportRun, pipeline: Any, batch: dict[str, Any], grid: tuple[int, int, int],
                      out_dir: Path) -> ReportFigure | None:
    """The chip, each head's full attention matrix and the cls token's attention over the patch grid."""
    parts = pipeline.parts
    prefix = int(getattr(parts.backbone, "num_prefix_tokens", 0))

    def forward() -> object:  # every patch of the chip, none masked
        return parts.backbone(parts.embed(batch["patches"]), parts.positional, placement_of(batch))

    return attention_figure(run, out_dir, parts, forward, lambda rec: _attention_panels(pipeline, batch, grid, rec),
                            lambda rec: _attention_caption(prefix, grid, rec), title=f"{run.name}: last layer on a chip",
                            panel_size=2.2)  # three panels a row: wider rows wrap (figures.MAX_WIDTH)


def model_figures(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """The positional and attention figures of a pretraining run (none for a run with a finetuning head)."""
    if run.slot("head"):
        return []
    pipeline = Pipeline.load(run.path)
    batch = _chip(pipeline)
    grid = grid_from_positions(batch["positions"], int(batch["patches"].shape[1]))
    figures = [_positions_figure(run, pipeline, batch, grid, out_dir),
               _attention_figure(run, pipeline, batch, grid, out_dir)]
    return [f for f in figures if f is not None]
