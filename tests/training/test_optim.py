"""AdamW decay groups and the warm-up + cosine schedule."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from registry_core.pipeline._train_config import TrainConfig
from registry_core.training import build_optimizer, decay_groups, lr_at


class RMSNormByHand(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.scale


class TiedLM(nn.Module):
    """Embedding tied to the output layer, a LayerNorm, a hand-written norm, a frozen layer."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(11, 6)
        self.proj = nn.Linear(6, 6)
        self.ln = nn.LayerNorm(6)
        self.rms = RMSNormByHand(6)
        self.frozen = nn.Linear(6, 6)
        self.frozen.requires_grad_(False)
        self.head = nn.Linear(6, 11, bias=False)
        self.head.weight = self.embed.weight


def test_default_groups_exempt_norms_and_biases() -> None:
    decay, keep = decay_groups(TiedLM(), ("norms", "biases"))
    assert decay == ["embed.weight", "proj.weight"]
    assert keep == ["proj.bias", "ln.weight", "ln.bias", "rms.scale"]


def test_embeddings_by_choice_and_tied_weight_follows_the_table() -> None:
    decay, keep = decay_groups(TiedLM(), ("embeddings",))
    assert "embed.weight" in keep and "head.weight" not in decay + keep  # tied: listed once
    assert decay == ["proj.weight", "proj.bias", "ln.weight", "ln.bias", "rms.scale"]
    assert decay_groups(TiedLM(), ())[1] == []


def test_optimizer_groups_carry_their_decay() -> None:
    model = TiedLM()
    opt = build_optimizer(model, TrainConfig(weight_decay=0.05, betas=(0.8, 0.9), steps=10))
    by_name = {g["name"]: g for g in opt.param_groups}
    assert by_name["decay"]["weight_decay"] == 0.05 and by_name["no_decay"]["weight_decay"] == 0.0
    assert by_name["decay"]["betas"] == (0.8, 0.9)
    assert sum(len(g["params"]) for g in opt.param_groups) == 6  # frozen layer left out
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer(nn.Linear(2, 2).requires_grad_(False), TrainConfig())


def test_no_decay_group_really_skips_decay() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = build_optimizer(model, TrainConfig(lr=0.1, weight_decay=0.5, steps=10))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # zero gradient: only decay can move a weight
    opt.step()
    after = dict(model.named_parameters())
    assert torch.allclose(after["0.weight"], before["0.weight"] * (1 - 0.1 * 0.5))
    for name in ("0.bias", "1.weight", "1.bias"):
        assert torch.equal(after[name], before[name])


def test_schedule_values() -> None:
    cfg = TrainConfig(steps=110, lr=1.0, min_lr=0.1, warmup_steps=10)
    assert [lr_at(s, cfg) for s in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert lr_at(9, cfg) == pytest.approx(1.0)  # warm-up ends at the peak
    assert lr_at(10, cfg) == pytest.approx(1.0)  # cosine starts at the peak
    assert lr_at(60, cfg) == pytest.approx(0.55)  # half-way: (lr + min_lr) / 2
    assert lr_at(35, cfg) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 4)))
    assert lr_at(110, cfg) == pytest.approx(0.1) and lr_at(500, cfg) == pytest.approx(0.1)
    values = [lr_at(s, cfg) for s in range(10, 110)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert lr_at(0, TrainConfig(steps=5, lr=0.5)) == 0.5  # no warm-up
    assert lr_at(4, TrainConfig(steps=5, warmup_steps=5, lr=0.5)) == 0.5  # warm-up only
    assert lr_at(1, TrainConfig(steps=2, warmup_steps=10, lr=1.0)) == pytest.approx(0.2)  # ends in warm-up


def test_layer_decay_scales_each_block_by_its_depth() -> None:
    from torch import nn

    from registry_core.interfaces import ModelParts
    from registry_core.training import layer_decay_scales

    backbone = nn.Module()
    backbone.blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    backbone.prefix = nn.Parameter(torch.zeros(1, 2))
    backbone.ln_f = nn.LayerNorm(2)
    parts = ModelParts(nn.Embedding(4, 2), None, backbone)
    scales = layer_decay_scales(parts, 0.5)
    assert scales[id(parts.embed.weight)] == 0.5 ** 4 and scales[id(backbone.prefix)] == 0.5 ** 4
    assert [scales[id(b.weight)] for b in backbone.blocks] == [0.5 ** 3, 0.5 ** 2, 0.5]
    assert id(backbone.ln_f.weight) not in scales and layer_decay_scales(parts, 1.0) == {}
