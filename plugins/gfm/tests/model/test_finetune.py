"""Finetuning: heads, the finetune objective (loss, freezing, layer-wise LR decay) and from-run weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.nn import functional as F

from registry_core import ConfigError, compose
from registry_core.training import build_optimizer, set_lr
from registry_core.training.trainer import TrainConfig
from registry_gfm.batches import collate

from ..conftest import LABELS, finetune_config, tiny_pipeline_config


def first_batch(pipeline: Any, n: int = 4, split: str = "train") -> dict[str, Any]:
    ds = pipeline.data.dataset(split)
    return collate([ds[i] for i in range(n)])


@pytest.mark.parametrize("decoder", ["progressive", "fpn"])
def test_segmentation_heads_give_a_class_per_pixel_for_any_multiple_of_the_patch(lsat7_store: Path,
                                                                                 decoder: str) -> None:
    p = compose(finetune_config(lsat7_store, head={"use": "segmentation", "decoder": decoder, "channels": 8})).build()
    objective, parts = p.objective, p.parts
    for h, w in ((16, 16), (32, 48), (12, 20)):
        logits = objective.logits(parts, torch.randn(2, 6, h, w))
        assert logits.shape == (2, 7, h, w)
    batch = first_batch(p)
    assert objective.logits(parts, batch).shape == (4, 7, 16, 16)
    with pytest.raises(ValueError, match="not a multiple of 4"):
        objective.logits(parts, torch.randn(1, 6, 18, 16))


def test_token_batches_and_chips_give_the_same_logits(lsat7_store: Path) -> None:
    p = compose(finetune_config(lsat7_store)).build()
    p.model.eval()
    batch = first_batch(p)
    ds = p.data.dataset("train")
    chips = torch.stack([ds.raw(i)["pixels"][0] for i in range(4)])  # (B, C, H, W), frame 0
    with torch.no_grad():
        assert torch.allclose(p.objective.logits(p.parts, batch), p.objective.logits(p.parts, chips), atol=1e-5)


def test_a_pixel_does_not_depend_on_the_other_chips_of_its_batch(lsat7_store: Path) -> None:
    p = compose(finetune_config(lsat7_store, head={"use": "segmentation", "decoder": "fpn", "channels": 8})).build()
    p.model.eval()
    chips = torch.randn(5, 6, 16, 16)
    with torch.no_grad():
        alone = p.objective.logits(p.parts, chips[2:3])
        together = p.objective.logits(p.parts, chips)[2:3]
    assert torch.allclose(alone, together, atol=1e-5)  # group norms, no batch norms


@pytest.mark.parametrize("pool", ["mean", "cls"])
def test_classification_head_pools_one_vector_per_chip(lsat7_store: Path, pool: str) -> None:
    config = finetune_config(lsat7_store, head={"use": "classification", "pool": pool, "hidden_dim": 16},
                             task="classification")
    config["backbone"]["cls_token"] = pool == "cls"
    p = compose(config).build()
    batch = first_batch(p)
    assert batch["label"].shape == (4,)
    loss, metrics = p.model(batch)
    assert p.objective.logits(p.parts, batch).shape == (4, 7) and torch.isfinite(loss)
    assert 0.0 <= float(metrics["acc"]) <= 1.0


def test_the_loss_skips_ignored_pixels_and_weights_classes_like_cross_entropy(lsat7_store: Path) -> None:
    weights = [1.0, 2.0, 0.5, 1.0, 3.0, 1.0, 1.0]
    p = compose(finetune_config(lsat7_store, objective={"class_weights": weights})).build()
    objective = p.objective
    logits = torch.randn(2, 7, 8, 8)
    label = torch.randint(0, 7, (2, 8, 8))
    label[0, :3] = 255
    loss, correct, labelled = objective.loss(logits, label)
    ref = F.cross_entropy(logits, label, weight=torch.tensor(weights), ignore_index=255)
    assert torch.allclose(loss, ref) and int(labelled) == 2 * 64 - 24
    assert int(correct) == int(((logits.argmax(1) == label) & (label != 255)).sum())
    changed = logits.clone()
    changed[0, :, :3] = 100.0  # whatever is predicted where there is no label does not count
    assert torch.allclose(objective.loss(changed, label)[0], loss)
    empty = torch.full_like(label, 255)
    zero, _, none = objective.loss(logits.requires_grad_(), empty)
    assert float(zero.detach()) == 0.0 and int(none) == 0
    zero.backward()  # a batch without labels is a no-op step, not NaN
    with pytest.raises(ValueError, match=r"labels \[9\] are outside the 7 classes"):
        objective.loss(logits, torch.full_like(label, 9))


def test_label_weight_makes_micro_batches_add_up_to_the_big_batch(lsat7_store: Path) -> None:
    """The class-weighted labelled total of each micro-batch (``label_weight``, the objective's ``loss_weight``)
    weighs its loss into the big batch's, as the trainer does; an equal-weight mean of the parts does not."""
    weights = [1.0, 2.0, 0.5, 1.0, 3.0, 1.0, 1.0]
    objective = compose(finetune_config(lsat7_store, objective={"class_weights": weights})).build().objective
    assert objective.loss_weight == "label_weight"
    logits = torch.randn(8, 7, 8, 8, generator=torch.Generator().manual_seed(0))
    label = torch.randint(0, 7, (8, 8, 8), generator=torch.Generator().manual_seed(1))
    for i in range(8):
        label[i, : i + 1] = 255  # fewer labels in later chips: micro-batches count different totals
    whole = float(objective.loss(logits, label)[0])
    parts = [(float(objective.loss(logits[i:i + 2], label[i:i + 2])[0]), float(objective._weight(label[i:i + 2])))
             for i in range(0, 8, 2)]
    total = sum(w for _, w in parts)
    assert sum(loss * w for loss, w in parts) / total == pytest.approx(whole, rel=1e-5)
    assert abs(sum(loss for loss, _ in parts) / 4 - whole) > 1e-4


def test_a_frozen_encoder_stays_as_loaded_while_the_head_learns(lsat7_store: Path, tiny_mae_run: Path,
                                                               tmp_path: Path) -> None:
    config = finetune_config(lsat7_store, tiny_mae_run)
    config["train"].update(steps=3, lr=1e-2)
    p = compose(config).build()
    before = {k: v.clone() for k, v in p.model.state_dict().items()}
    p.fit(tmp_path / "run")
    after = p.model.state_dict()
    encoder = [k for k in before if k.startswith(("embed.", "positional.", "backbone."))]
    head = [k for k in before if k.startswith("head.") and before[k].is_floating_point()]
    assert encoder and all(torch.equal(before[k], after[k]) for k in encoder)
    assert any(not torch.equal(before[k], after[k]) for k in head)
    assert not any(q.requires_grad for q in p.parts.backbone.parameters())


def test_layer_decay_gives_each_block_its_own_learning_rate(lsat7_store: Path) -> None:
    p = compose(finetune_config(lsat7_store, objective={"freeze_encoder": False, "layer_decay": 0.5})).build()
    scales = p.model.lr_scales()
    parts = p.parts
    assert all(scales[id(q)] == 0.5 ** 3 for q in parts.embed.parameters())  # depth 2: embedding at d^(L+1)
    assert all(scales[id(q)] == 0.5 ** 2 for q in parts.backbone.blocks[0].parameters())
    assert all(scales[id(q)] == 0.5 for q in parts.backbone.blocks[1].parameters())
    assert not any(id(q) in scales for q in parts.backbone.ln_f.parameters())
    assert not any(id(q) in scales for q in parts.head.parameters())
    optimizer = build_optimizer(p.model, TrainConfig(lr=1e-3))
    set_lr(optimizer, 1e-3)
    by_param = {id(q): g["lr"] for g in optimizer.param_groups for q in g["params"]}
    assert by_param[id(parts.backbone.blocks[0].attn.qkv.weight)] == pytest.approx(2.5e-4)
    assert by_param[id(next(parts.head.parameters()))] == pytest.approx(1e-3)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == sum(1 for _ in p.model.parameters())
    frozen = compose(finetune_config(lsat7_store, objective={"layer_decay": 0.5})).build()
    assert frozen.model.lr_scales() == {}  # a frozen encoder has nothing to decay


def test_from_run_loads_the_runs_encoder_and_normalisation(lsat7_store: Path, tiny_mae_run: Path) -> None:
    p = compose(finetune_config(lsat7_store, tiny_mae_run)).build()
    saved = load_file(str(tiny_mae_run / "model.safetensors"))
    state = p.model.state_dict()
    encoder = [k for k in saved if k.startswith(("embed.", "positional.", "backbone."))]
    assert encoder and all(torch.equal(state[k], saved[k]) for k in encoder)
    run = compose(tiny_pipeline_config(lsat7_store)).build()
    assert np.allclose(p.data.normalization()["mean"], run.data.normalization()["mean"])
    assert p.to_config()["data"]["mean"] == pytest.approx(run.data.normalization()["mean"])  # pinned when saved
    assert p.slots["weights"].value("patch_size") == 4 and p.slots["weights"].value("embed_dim") == 32


def test_a_run_that_does_not_fit_the_pipeline_is_a_contract_error(lsat7_store: Path, tiny_mae_run: Path,
                                                                  tmp_path: Path) -> None:
    reordered = finetune_config(lsat7_store, tiny_mae_run, bands=["green", "blue", "red", "nir08", "swir16", "swir22"])
    with pytest.raises(ConfigError, match="bands"):
        compose(reordered)
    config = finetune_config(lsat7_store, tiny_mae_run)
    config["tokenizer"]["patch_size"] = 8
    with pytest.raises(ConfigError, match="patch_size"):
        compose(config)
    config = finetune_config(lsat7_store, tiny_mae_run)
    config["backbone"].update(embed_dim=64)
    with pytest.raises(ConfigError, match="embed_dim"):
        compose(config)
    with pytest.raises(ConfigError, match=r"run folder .*nowhere has no pipeline\.toml and model\.safetensors"):
        compose(finetune_config(lsat7_store, tmp_path / "nowhere"))


def test_the_task_of_the_data_and_the_head_must_agree(lsat7_store: Path) -> None:
    with pytest.raises(ConfigError, match="task"):
        compose(finetune_config(lsat7_store, task="classification"))
    unlabelled = finetune_config(lsat7_store)
    for key in LABELS:
        unlabelled["data"].pop(key)
    unlabelled["head"]["num_classes"] = 3
    p = compose(unlabelled).build()
    with pytest.raises(KeyError, match="needs labelled samples"):
        p.model(first_batch(p))
