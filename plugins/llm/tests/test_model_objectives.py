"""next-token and masked-lm objectives: losses, ignored targets, tied heads, 80/10/10 corruption."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from registry_core import get_registry
from registry_core.interfaces import ModelParts

V, D = 50, 32


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _parts(
    build_positional: Callable[..., Any], backbone: str = "gpt", position: str = "rope", rows: int = V
) -> ModelParts:
    torch.manual_seed(0)
    reg = get_registry()
    embed = nn.Embedding(rows, D)
    nn.init.normal_(embed.weight, std=0.02)
    pos = build_positional(position, D)
    bb = reg.build("backbone", backbone, embed_dim=D, depth=2, heads=4, max_positions=64)
    return ModelParts(embed, pos, bb)


def _next_token(parts: ModelParts, **opts: object) -> Any:
    obj: Any = get_registry().build("objective", "next-token", **opts)
    obj.bind(parts)
    return obj


def test_next_token_loss_near_uniform_at_init_and_tied_gradient(build_positional: Callable[..., Any]) -> None:
    parts = _parts(build_positional)
    obj = _next_token(parts)
    ids = torch.randint(0, V, (4, 16))
    loss, metrics = obj(parts, {"input_ids": ids[:, :-1], "targets": ids[:, 1:]})
    assert abs(loss.item() - math.log(V)) < 0.1
    assert float(metrics["tokens"]) == 4 * 15
    loss.backward()
    assert parts.embed.weight.grad is not None
    assert list(obj.parameters()) == []  # the tied head is the embedding, owned by the embedding


def test_next_token_shifts_when_no_targets_and_ignores_pad(build_positional: Callable[..., Any]) -> None:
    parts = _parts(build_positional)
    obj = _next_token(parts, pad_id=0)
    ids = torch.randint(1, V, (2, 10))
    shifted, _ = obj(parts, {"input_ids": ids})
    given, _ = obj(parts, {"input_ids": ids[:, :-1], "targets": ids[:, 1:]})
    assert torch.allclose(shifted, given)
    targets = ids[:, 1:].clone()
    targets[0, 4:] = 0  # padding
    targets[1, :2] = -100
    loss, metrics = obj(parts, {"input_ids": ids[:, :-1], "targets": targets})
    assert float(metrics["tokens"]) == 18 - 5 - 2
    logits = obj.logits(parts, ids[:, :-1])
    keep = (targets != 0) & (targets != -100)
    assert torch.allclose(loss, F.cross_entropy(logits[keep], targets[keep]), atol=1e-6)
    with pytest.raises(ValueError, match="do not match"):
        obj(parts, {"input_ids": ids, "targets": ids[:, 1:]})


def test_next_token_padded_table_and_untied_head(build_positional: Callable[..., Any]) -> None:
    parts = _parts(build_positional, rows=64)  # vocabulary padded to a multiple of 64
    obj = _next_token(parts, vocab_size=V)
    logits = obj.logits(parts, torch.randint(0, V, (1, 5)))
    assert logits.shape == (1, 5, V)
    assert obj.logits(parts, torch.randint(0, V, (1, 5)), last_only=True).shape == (1, 1, V)
    untied = _next_token(parts, vocab_size=V, tie_weights=False)
    assert [p.shape for p in untied.parameters()] == [(V, D)]
    with pytest.raises(ValueError, match="larger than the embedding"):
        _next_token(parts, vocab_size=100)


def test_next_token_unbound_is_a_clear_error(build_positional: Callable[..., Any]) -> None:
    obj = get_registry().build("objective", "next-token")
    with pytest.raises(RuntimeError, match="not bound"):
        obj(_parts(build_positional), {"input_ids": torch.zeros(1, 3, dtype=torch.long)})


def test_next_token_learns(build_positional: Callable[..., Any]) -> None:
    """A few steps on a repeating pattern drive the loss well down: gradients reach every part."""
    parts = _parts(build_positional, position="learned")
    obj = _next_token(parts)
    params = [p for m in (parts.embed, parts.positional, parts.backbone) for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=3e-3)
    ids = torch.arange(33).remainder(7).unsqueeze(0).repeat(4, 1)
    batch = {"input_ids": ids[:, :-1], "targets": ids[:, 1:]}
    first = obj(parts, batch)[0].item()
    for _ in range(40):
        opt.zero_grad()
        loss, _ = obj(parts, batch)
        loss.backward()
        opt.step()
    assert loss.item() < first / 4


def _mlm(parts: ModelParts, **opts: object) -> Any:
    obj: Any = get_registry().build("objective", "masked-lm", **{"mask_id": 1, "pad_id": 0, **opts})
    obj.bind(parts)
    return obj


def test_masked_lm_corruption_statistics(build_positional: Callable[..., Any]) -> None:
    obj = _mlm(_parts(build_positional, "bert"))
    obj.generator = torch.Generator().manual_seed(1)
    ids = torch.randint(2, V, (64, 512))
    ids[:, -64:] = 0  # padding is never chosen
    corrupted, targets = obj.corrupt(ids)
    chosen = targets != -100
    assert not chosen[:, -64:].any()
    share = chosen.float().sum() / (64 * 448)
    assert abs(share.item() - 0.15) < 0.01
    n = chosen.sum().item()
    masked = (corrupted == 1) & chosen
    unchanged = (corrupted == ids) & chosen
    assert abs(masked.sum().item() / n - 0.8) < 0.02
    # random replacements can hit the original id by chance (1/V of them): "unchanged" is ~10% + a bit
    assert abs(unchanged.sum().item() / n - 0.1) < 0.02
    assert torch.equal(targets[chosen], ids[chosen])
    assert torch.equal(corrupted[~chosen], ids[~chosen])


def test_masked_lm_forward_backward_and_edge_cases(build_positional: Callable[..., Any]) -> None:
    parts = _parts(build_positional, "bert", "alibi")
    obj = _mlm(parts)
    ids = torch.randint(2, V, (4, 32))
    loss, metrics = obj(parts, {"input_ids": ids, "targets": ids})
    assert abs(loss.item() - math.log(V)) < 0.3 and metrics["tokens"] > 0
    loss.backward()
    assert parts.embed.weight.grad is not None
    nothing = _mlm(parts, mask_prob=0.0)
    loss, metrics = nothing(parts, {"input_ids": ids})
    assert loss.item() == 0.0 and metrics["tokens"] == 0
    loss.backward()


def test_masked_lm_needs_a_mask_id(build_positional: Callable[..., Any]) -> None:
    obj = get_registry().build("objective", "masked-lm")
    with pytest.raises(ValueError, match="mask_id is not set"):
        obj.bind(_parts(build_positional, "bert"))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        _mlm(_parts(build_positional, "bert"), mask_id=V + 3)
    with pytest.raises(Exception, match="replace_mask"):
        get_registry().build("objective", "masked-lm", replace_mask=0.9, replace_random=0.2)


def test_objective_specs_require_the_right_backbone() -> None:
    reg = get_registry()
    assert reg.get("objective", "next-token").requires["causal"] is True
    assert reg.get("objective", "masked-lm").requires["causal"] is False
    for name in ("next-token", "masked-lm"):
        req = reg.get("objective", name).requires
        assert req["tokens"] == "discrete" and req["embed_dim"] is None and req["vocab_size"] is None


def test_masked_lm_with_a_keep_mask(build_positional: Callable[..., Any]) -> None:
    """Padding marked by ``keep`` is neither chosen nor attended to."""
    parts = _parts(build_positional, "bert", "sinusoidal")
    obj = _mlm(parts, pad_id=None, mask_prob=0.5)
    ids = torch.randint(2, V, (3, 20))
    keep = torch.ones(3, 20, dtype=torch.bool)
    keep[1, 12:] = False
    _, targets = obj.corrupt(ids, keep)
    assert not (targets[1, 12:] != -100).any()
    loss, metrics = obj(parts, {"input_ids": ids, "keep": keep})
    assert torch.isfinite(loss) and metrics["tokens"] > 0
    loss.backward()


def test_masked_lm_pads_by_pad_id_when_the_batch_has_no_keep(build_positional: Callable[..., Any]) -> None:
    """Rows padded with ``pad_id`` and no ``keep``: the real tokens do not attend to the padding (the loss is the
    one of an explicit ``keep``, not the one where padding is attended to)."""
    parts = _parts(build_positional, "bert", "sinusoidal")
    obj = _mlm(parts, mask_prob=0.5).eval()  # eval: the same tokens are chosen in every call
    ids = torch.randint(2, V, (3, 20), generator=torch.Generator().manual_seed(3))
    ids[1, 12:] = 0
    ids[2, 5:] = 0
    with torch.no_grad():
        implicit, _ = obj(parts, {"input_ids": ids})
        explicit, _ = obj(parts, {"input_ids": ids, "keep": ids != 0})
        attended, _ = obj(parts, {"input_ids": ids, "keep": torch.ones_like(ids, dtype=torch.bool)})
    assert float(implicit) == float(explicit)
    assert abs(float(implicit) - float(attended)) > 1e-5  # untrained, so close; float noise is ~1e-7
