"""The ``reconstruction`` evaluator: masked-patch MSE / PSNR over valid pixels, a fixed mask seed, the PNG grid."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from registry_core.interfaces import ModelParts
from registry_gfm.backbones.specs import ViTConfig
from registry_gfm.backbones.vit import build as build_vit
from registry_gfm.batches import collate, sample_noise
from registry_gfm.evaluators.reconstruction import ReconstructionEvaluator
from registry_gfm.evaluators.reconstruction import build as build_reconstruction
from registry_gfm.evaluators.specs import SPECS, ReconstructionConfig
from registry_gfm.objectives.mae import MAEObjective
from registry_gfm.objectives.specs import MAEConfig
from registry_gfm.positions.sincos import SinCos2D
from registry_gfm.render import grid_size
from registry_gfm.tokenizers.patch_tokenizer import PatchTokenizer
from registry_gfm.tokenizers.specs import PatchConfig

pytestmark = pytest.mark.usefixtures("torch_one_thread")

BANDS = ["blue", "green", "red", "nir08"]
SIZE, PATCH, DIM = 16, 4, 32


def chips(n: int, seed: int = 0, holes: bool = True) -> list[dict[str, Any]]:
    """``zarr-chips``-like samples: smooth images, some with an unusable (cloudy) corner."""
    g = torch.Generator().manual_seed(seed)
    out = []
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    for i in range(n):
        base = torch.stack([torch.sin(xx / 3 + c + i) + torch.cos(yy / 4 - c) for c in range(len(BANDS))])
        pixels = (base + 0.1 * torch.randn(base.shape, generator=g))[None].float()  # (1, C, H, W)
        valid = torch.ones(1, SIZE, SIZE, dtype=torch.bool)
        if holes and i % 2:
            valid[:, :6, :6] = False
            pixels[:, :, :6, :6] = 0.0
        out.append({"pixels": pixels, "valid": valid, "bands": list(BANDS)})
    return out


class Data:
    """A data source in memory: ``dataset(split)`` -> encoded samples, as zarr-chips with a tokenizer serves."""

    def __init__(self, tokenizer: PatchTokenizer, splits: dict[str, list[dict[str, Any]]], encode: bool = True):
        self.bands = list(BANDS)
        self.splits = {k: [tokenizer.encode(s) if encode else s for s in v] for k, v in splits.items()}

    def dataset(self, split: str) -> list[dict[str, Any]]:
        return self.splits[split]


@dataclass
class Pipeline:
    data: Any
    parts: ModelParts
    objective: Any
    tokenizer: Any


def pipeline(mask_ratio: float = 0.75, splits: dict[str, list[dict[str, Any]]] | None = None,
             encode: bool = True, band_groups: list[list[str]] | None = None) -> Pipeline:
    torch.manual_seed(0)
    tok = PatchTokenizer(PatchConfig(patch_size=PATCH, bands=list(BANDS), chip_size=SIZE, band_groups=band_groups))
    parts = ModelParts(tok.embedding(DIM), SinCos2D(DIM), build_vit(ViTConfig(embed_dim=DIM, depth=1, heads=2)))
    obj = MAEObjective(MAEConfig(embed_dim=DIM, mask_ratio=mask_ratio, decoder_dim=16, decoder_depth=1,
                                 decoder_heads=2))
    obj.bind(parts)
    parts.objective = obj
    data = Data(tok, splits if splits is not None else {"train": chips(4, 1), "val": chips(7)}, encode)
    return Pipeline(data, parts, obj, tok)


def reference(p: Pipeline, seed: int = 0, tokens: int = 16) -> tuple[float, int, float]:
    """(mse, values scored, data range) recomputed sample by sample from the objective's reconstruct."""
    sq, n = 0.0, 0
    lo, hi = math.inf, -math.inf
    for i, item in enumerate(p.data.dataset("val")):
        with torch.no_grad():
            p.parts.backbone.eval()
            out = p.objective.reconstruct(p.parts, collate([item]), noise=sample_noise(seed, i, 1, tokens))
        keep = out["mask"].bool() & out["valid"].bool()
        d = (out["pred"] - out["target"])[keep]
        sq += float((d.double() ** 2).sum())
        n += int(keep.sum())
        lo, hi = min(lo, float(out["target"][keep].min())), max(hi, float(out["target"][keep].max()))
    return sq / n, n, hi - lo


def test_mse_and_psnr_match_a_per_sample_reference() -> None:
    p = pipeline()
    metrics = ReconstructionEvaluator(ReconstructionConfig(batch_size=3)).evaluate(p, "val")
    mse, n, data_range = reference(p)
    assert metrics["samples"] == 7
    assert metrics["masked_values"] == n
    assert metrics["mse"] == pytest.approx(mse, rel=1e-5)
    assert metrics["psnr"] == pytest.approx(10 * math.log10(data_range**2 / mse), rel=1e-5)
    assert metrics["mse_visible"] > 0
    # 12 of 16 patches hidden per chip; odd chips have a 6x6 unusable corner: not scored
    hidden_total = 7 * 12 * PATCH * PATCH * len(BANDS)
    assert n < hidden_total


def test_band_groups(tmp_path: Path) -> None:
    """SatMAE groups hide bands apart: one token per patch and group, a per-value mask."""
    p = pipeline(band_groups=[["blue", "green", "red"], ["nir08"]])
    metrics = ReconstructionEvaluator(ReconstructionConfig(batch_size=4, out=str(tmp_path / "g.png"))).evaluate(p, "val")
    mse, n, _ = reference(p, tokens=32)
    assert metrics["masked_values"] == n and metrics["mse"] == pytest.approx(mse, rel=1e-5)
    assert (tmp_path / "g.png").exists()


def test_the_mask_is_fixed_by_the_seed_whatever_the_batch_size() -> None:
    p = pipeline()
    a = ReconstructionEvaluator(ReconstructionConfig(batch_size=1)).evaluate(p, "val")
    b = ReconstructionEvaluator(ReconstructionConfig(batch_size=7)).evaluate(p, "val")
    c = ReconstructionEvaluator(ReconstructionConfig(batch_size=2, seed=1)).evaluate(p, "val")
    assert a["mse"] == pytest.approx(b["mse"], rel=1e-5) and a["masked_values"] == b["masked_values"]
    assert c["mse"] != pytest.approx(a["mse"], rel=1e-5)
    assert p.parts.backbone.training and p.objective.training  # modes restored


def test_max_batches_and_raw_chips_encoded_by_the_tokenizer() -> None:
    p = pipeline(encode=False)  # items are raw chips: the evaluator encodes them with the pipeline's tokenizer
    metrics = build_reconstruction(ReconstructionConfig(batch_size=2, max_batches=2)).evaluate(p, "val")
    assert metrics["samples"] == 4


class Exact:
    """A stub objective whose reconstruction is the target plus a known offset."""

    def __init__(self, offset: float, token_mask: bool) -> None:
        self.offset, self.token_mask = offset, token_mask

    def reconstruct(self, parts: ModelParts, batch: dict[str, Any], noise: torch.Tensor | None = None
                    ) -> dict[str, torch.Tensor]:
        target = batch["patches"]
        b, n, size = target.shape
        mask = (noise > 0.5).float() if noise is not None else torch.ones(b, n)
        valid = batch["pixel_valid"][..., None].expand(b, n, size // len(BANDS), len(BANDS)).reshape(b, n, size)
        return {"pred": target + self.offset, "target": target,
                "mask": mask if self.token_mask else mask[..., None].expand(b, n, size), "valid": valid}


@pytest.mark.parametrize("token_mask", [True, False])
def test_known_error_gives_known_mse_and_psnr(token_mask: bool) -> None:
    p = pipeline()
    p.objective = Exact(0.1, token_mask)
    metrics = ReconstructionEvaluator(ReconstructionConfig(batch_size=4)).evaluate(p, "val")
    assert metrics["mse"] == pytest.approx(0.01, rel=1e-4)
    assert metrics["mse_visible"] == pytest.approx(0.01, rel=1e-4)
    # the data range of the scored targets
    lo, hi = math.inf, -math.inf
    for i, item in enumerate(p.data.dataset("val")):
        noise = sample_noise(0, i, 1, 16)[0]
        keep = (noise > 0.5)[:, None] & item["pixel_valid"].repeat_interleave(len(BANDS), dim=1)
        lo, hi = min(lo, float(item["patches"][keep].min())), max(hi, float(item["patches"][keep].max()))
    assert metrics["psnr"] == pytest.approx(10 * math.log10((hi - lo) ** 2 / 0.01), rel=1e-4)
    p.objective = Exact(0.0, token_mask)
    assert ReconstructionEvaluator(ReconstructionConfig()).evaluate(p, "val")["psnr"] == math.inf


def test_png_grid(tmp_path: Path) -> None:
    p = pipeline()
    out = tmp_path / "eval" / "reconstruction.png"
    ev = ReconstructionEvaluator(ReconstructionConfig(batch_size=2, out=str(out), samples=3))
    ev.evaluate(p, "val")
    assert ev.last_png == out and out.exists()
    with Image.open(out) as im:
        assert im.size == grid_size(3, SIZE, SIZE)  # enlarged to about render.PANEL pixels
    # no file without `out`
    ev = ReconstructionEvaluator(ReconstructionConfig())
    ev.evaluate(p, "val")
    assert ev.last_png is None and [f.name for f in out.parent.iterdir()] == ["reconstruction.png"]


def test_png_frame_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="frame=2 but the chips have 1 frame"):
        ReconstructionEvaluator(ReconstructionConfig(out=str(tmp_path / "r.png"), frame=2)).evaluate(pipeline(), "val")


def test_failures_name_the_evaluator_and_what_it_expected() -> None:
    p = pipeline(splits={"train": chips(2), "val": []})
    with pytest.raises(ValueError, match="reconstruction: split 'val' has no samples"):
        ReconstructionEvaluator(ReconstructionConfig()).evaluate(p, "val")
    p = pipeline()
    p.objective = object()
    with pytest.raises(TypeError, match=r"reconstruction needs an objective with reconstruct\(parts, batch, noise\)"):
        ReconstructionEvaluator(ReconstructionConfig()).evaluate(p, "val")
    with pytest.raises(ValueError, match="reconstruction: no hidden, valid pixel"):
        ReconstructionEvaluator(ReconstructionConfig()).evaluate(pipeline(mask_ratio=0.0), "val")
    p = pipeline(splits={"val": [{"image": torch.zeros(4, 16, 16)}]}, encode=False)
    with pytest.raises(KeyError, match="reconstruction: dataset items need 'patches'"):
        ReconstructionEvaluator(ReconstructionConfig()).evaluate(p, "val")


def test_specs() -> None:
    by_name = {s.name: s for s in SPECS}
    assert set(by_name) == {"reconstruction", "linear-probe", "task-metrics", "baselines"}
    for spec in SPECS:
        assert spec.kind == "evaluator" and spec.modality == "imagery" and spec.summary
        module, _, attr = spec.target.partition(":")
        builder = getattr(__import__(module, fromlist=[attr]), attr)
        assert spec.config is not None and isinstance(spec.config, type)
        assert callable(getattr(builder(spec.config()), "evaluate", None))
