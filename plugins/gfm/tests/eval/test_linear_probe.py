"""The ``linear-probe`` evaluator on labelled chips built here: the class is which band is bright.

No labelled chip source exists yet (the finetuning issue adds one), so the labelled data is an in-memory
source serving ``patch``-tokenized samples with a ``label``, exactly the form zarr-chips serves once a
tokenizer is attached and the chips carry labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch

from registry_core.interfaces import ModelParts
from registry_gfm.backbones.specs import ViTConfig
from registry_gfm.backbones.vit import build as build_vit
from registry_gfm.evaluators.linear_probe import LinearProbeEvaluator
from registry_gfm.evaluators.linear_probe import build as build_probe
from registry_gfm.evaluators.specs import LinearProbeConfig
from registry_gfm.objectives.mae import MAEObjective
from registry_gfm.objectives.specs import MAEConfig
from registry_gfm.positions.sincos import SinCos2D
from registry_gfm.tokenizers.patch_tokenizer import PatchTokenizer
from registry_gfm.tokenizers.specs import PatchConfig

pytestmark = pytest.mark.usefixtures("torch_one_thread")

BANDS = ["blue", "green", "red", "nir08"]
SIZE, PATCH, DIM = 8, 4, 32


def labelled(n: int, seed: int, random_labels: bool = False, label: bool = True) -> list[dict[str, Any]]:
    """Chips of noise where band ``label`` is bright (+2); with ``random_labels`` the label is unrelated."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        cls = i % len(BANDS)
        pixels = torch.randn(1, len(BANDS), SIZE, SIZE, generator=g)
        pixels[0, cls] += 2.0
        sample: dict[str, Any] = {"pixels": pixels, "valid": torch.ones(1, SIZE, SIZE, dtype=torch.bool),
                                  "time": torch.tensor([1_600_000_000 + 86400 * i])}
        if label:
            sample["label"] = int(torch.randint(0, 4, (), generator=g)) if random_labels else cls
        out.append(sample)
    return out


class Data:
    def __init__(self, tokenizer: PatchTokenizer, splits: dict[str, list[dict[str, Any]]]) -> None:
        self.splits = {k: [tokenizer.encode(s) for s in v] for k, v in splits.items()}

    def dataset(self, split: str) -> list[dict[str, Any]]:
        return self.splits[split]


@dataclass
class Pipeline:
    data: Any
    parts: ModelParts
    objective: Any
    tokenizer: Any


def pipeline(splits: dict[str, list[dict[str, Any]]] | None = None, cls_token: bool = True) -> Pipeline:
    torch.manual_seed(0)
    tok = PatchTokenizer(PatchConfig(patch_size=PATCH, bands=list(BANDS), chip_size=SIZE))
    backbone = build_vit(ViTConfig(embed_dim=DIM, depth=1, heads=2, cls_token=cls_token))
    parts = ModelParts(tok.embedding(DIM), SinCos2D(DIM), backbone)
    obj = MAEObjective(MAEConfig(embed_dim=DIM, decoder_dim=16, decoder_depth=1, decoder_heads=2))
    obj.bind(parts)
    parts.objective = obj
    splits = splits if splits is not None else {"train": labelled(96, 0), "val": labelled(48, 1)}
    return Pipeline(Data(tok, splits), parts, obj, tok)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_separable_classes_are_found(pool: str) -> None:
    p = pipeline()
    p.parts.backbone.train()
    metrics = LinearProbeEvaluator(LinearProbeConfig(pool=pool, epochs=30, batch_size=32)).evaluate(p, "val")
    assert metrics["accuracy"] >= 0.9 and metrics["macro_f1"] >= 0.9
    assert metrics["train_accuracy"] >= 0.9
    assert metrics["classes"] == 4 and metrics["train_samples"] == 96 and metrics["samples"] == 48
    assert {f"f1_class_{c}" for c in range(4)} <= set(metrics)
    assert p.parts.backbone.training  # frozen encoder's mode restored


def test_random_labels_are_near_chance() -> None:
    p = pipeline({"train": labelled(96, 0, random_labels=True), "val": labelled(200, 1, random_labels=True)})
    metrics = LinearProbeEvaluator(LinearProbeConfig(pool="mean", epochs=30, batch_size=32)).evaluate(p, "val")
    assert metrics["accuracy"] <= 0.4  # chance is 0.25


def test_deterministic_and_max_samples() -> None:
    p = pipeline()
    cfg = LinearProbeConfig(pool="mean", epochs=5, batch_size=16, max_samples=40, seed=3)
    a, b = build_probe(cfg).evaluate(p, "val"), build_probe(cfg).evaluate(p, "val")
    assert a == b
    assert a["train_samples"] == 40 and a["samples"] == 40


def test_frozen_encoder_is_not_changed() -> None:
    p = pipeline()
    before = {k: v.clone() for k, v in p.parts.backbone.state_dict().items()}
    LinearProbeEvaluator(LinearProbeConfig(epochs=2)).evaluate(p, "val")
    after = p.parts.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_failures_name_the_evaluator_and_what_it_expected() -> None:
    p = pipeline({"train": labelled(8, 0, label=False), "val": labelled(8, 1, label=False)})
    with pytest.raises(ValueError, match=r"linear-probe: samples of split 'train' need a 'label'.*they have none"):
        LinearProbeEvaluator(LinearProbeConfig(epochs=1)).evaluate(p, "val")
    p = pipeline({"train": labelled(8, 0), "val": []})
    with pytest.raises(ValueError, match="linear-probe: split 'val' has no samples"):
        LinearProbeEvaluator(LinearProbeConfig(epochs=1)).evaluate(p, "val")
    p = pipeline(cls_token=False)
    with pytest.raises(ValueError, match=r"cls token.*pool='mean'"):
        LinearProbeEvaluator(LinearProbeConfig(pool="cls", epochs=1)).evaluate(p, "val")
    with pytest.raises(ValueError, match=r"linear-probe: labels must be 0..1 \(classes=2\)"):
        LinearProbeEvaluator(LinearProbeConfig(classes=2, epochs=1)).evaluate(pipeline(), "val")
