"""Train a tiny ``contrastive`` model for a few steps, alone or under torchrun (for test_contrastive_ranks.py).

Run as ``python contrastive_ranks.py OUT [--local-negatives]``; writes OUT/metrics.jsonl (rank 0). The chips have
two dates, so the two views of a sample are its two dates in either order (the loss is symmetric in them) and a
run depends only on the data order, not on how the random views fall. The four samples rank 1 trains on in the
first step have no valid pixel: that rank has no pair to contribute there and still takes part in the step.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from registry_core import compose
from registry_core.pipeline._train_config import TrainConfig
from registry_core.training import Trainer
from registry_core.training.data_order import rank_micro_batches
from registry_gfm.tokenizers.patch_layout import patchify, token_grid_positions

BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]
SAMPLES, BATCH, STEPS, SEED = 24, 8, 3, 0


def dataset() -> list[dict[str, torch.Tensor]]:
    """``SAMPLES`` chips of 2 dates as the patch tokenizer gives them, one dict per sample."""
    g = torch.Generator().manual_seed(7)
    chips = torch.randn(SAMPLES, 6, 2, 16, 16, generator=g)
    patches = patchify(chips, 4)  # (S, 32, 96)
    positions = token_grid_positions((2, 4, 4))
    empty = set(rank_micro_batches(SAMPLES, SEED, 0, BATCH, BATCH // 2, rank=1, world_size=2)[0])
    out = []
    for i in range(SAMPLES):
        valid = torch.full((32, 16), i not in empty, dtype=torch.bool)
        out.append({"patches": patches[i], "positions": positions, "pixel_valid": valid,
                    "time": torch.tensor([946684800, 946684800 + 30 * 86400]),
                    "center_lonlat": torch.zeros(2, dtype=torch.float64), "gsd": torch.tensor(30.0, dtype=torch.float64)})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--local-negatives", action="store_true",
                        help="each rank's own views only (what the objective did before it gathered them)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.local_negatives:
        import registry_gfm.objectives.contrastive as contrastive

        contrastive.group_size = lambda: 1  # type: ignore[assignment]
    torch.manual_seed(0)
    pipe = compose({
        "data": {"use": "zarr-chips", "store": "unused.zarr", "chip_size": 16, "bands": BANDS, "frames": 2},
        "tokenizer": {"use": "patch", "patch_size": 4, "bands": BANDS},
        "positional": {"use": "sincos-3d"},
        "backbone": {"use": "vit", "embed_dim": 32, "depth": 2, "heads": 4},
        "objective": {"use": "contrastive", "views": "dates", "head": "gelu", "projection_dim": 16},
    }).build(prepare=False)
    config = TrainConfig(steps=STEPS, batch_size=BATCH, lr=3e-3, warmup_steps=0, weight_decay=0.0, log_every=1,
                         checkpoint_every=0, device="cpu", seed=SEED)
    with Trainer(pipe.model, dataset(), config, args.out, units="chips") as trainer:
        trainer.fit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
