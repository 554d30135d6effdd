"""Core seams of finetuning: tapped block outputs of the Transformer, per-parameter learning-rate factors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from registry_core.nn import Transformer
from registry_core.training import TrainConfig, build_optimizer, set_lr


def test_taps_return_the_normed_output_of_the_named_blocks() -> None:
    torch.manual_seed(0)
    stack = Transformer(16, 3, 2, causal=False, prefix_tokens=1).eval()
    x = torch.randn(2, 5, 16)
    tapped: list[torch.Tensor] = []
    out = stack(x, taps=[0, -1], tapped=tapped)
    assert len(tapped) == 2 and torch.allclose(tapped[1], out)  # the last block, final-normed, is the output
    h = torch.cat([stack.prefix.expand(2, -1, -1), x], dim=1)
    h = stack.blocks[0](h, attn_mask=None, is_causal=False, rotary=None, cache=None, layer=0)
    assert torch.allclose(tapped[0], stack.ln_f(h), atol=1e-6)
    assert torch.equal(stack(x), out)  # tapping changes nothing
    with pytest.raises(ValueError, match="tap 3 is not a block of this 3-block stack"):
        stack(x, taps=[3], tapped=[])
    with pytest.raises(ValueError, match="taps needs a list"):
        stack(x, taps=[0])


class Scaled(nn.Module):
    """A model whose second layer trains at a tenth of the rate."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

    def lr_scales(self) -> dict[int, float]:
        return {id(p): 0.1 for p in self.b.parameters()}


def test_lr_scales_split_the_optimizer_groups_and_scale_the_schedule() -> None:
    model = Scaled()
    optimizer = build_optimizer(model, TrainConfig(lr=1e-2, weight_decay=0.1))
    names = sorted(g["name"] for g in optimizer.param_groups)
    assert names == ["decay", "decay@0.1", "no_decay", "no_decay@0.1"]
    set_lr(optimizer, 1e-2)
    lr = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert lr[id(model.a.weight)] == pytest.approx(1e-2) and lr[id(model.b.weight)] == pytest.approx(1e-3)
    wd = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert wd[id(model.b.weight)] == 0.1 and wd[id(model.b.bias)] == 0.0
    plain = build_optimizer(nn.Linear(2, 2), TrainConfig())
    assert [g["name"] for g in plain.param_groups] == ["decay", "no_decay"]
