"""1D positional encoders with the gpt and bert backbones, built through the registry and directly."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch

from registry_core import ConfigError, get_registry
from registry_llm.positions.alibi import AlibiPositions, alibi_slopes
from registry_llm.positions.learned import LearnedPositions
from registry_llm.positions.rope import RotaryPositions
from registry_llm.positions.sinusoidal import SinusoidalPositions, sinusoid_table

D, H, T = 32, 4, 12
POSITIONS = ["sinusoidal", "learned", "rope", "alibi"]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _positional(build_positional: Callable[..., Any], name: str, heads: int = H) -> torch.nn.Module:
    """The encoder ``name``: a 64-row table for learned, the default max_positions for the others."""
    extra = {"max_positions": 64} if name == "learned" else {}
    module: torch.nn.Module = build_positional(name, D, heads=heads, **extra)
    return module


def _backbone(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    module: torch.nn.Module = get_registry().build(
        "backbone", name, embed_dim=D, depth=2, heads=H, max_positions=64, init_std=0.2
    )
    return module


@pytest.mark.parametrize("backbone", ["gpt", "bert"])
@pytest.mark.parametrize("position", POSITIONS)
def test_forward_backward_all_positions(backbone: str, position: str, build_positional: Callable[..., Any]) -> None:
    model, pos = _backbone(backbone), _positional(build_positional, position)
    assert pos.grid == 1
    x = torch.randn(2, T, D, requires_grad=True)
    y = model(x, pos)
    assert y.shape == (2, T, D)
    y.pow(2).mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in model.parameters())
    if position == "learned":
        assert pos.weight.grad is not None


@pytest.mark.parametrize("position", POSITIONS)
def test_gpt_is_causal_and_bert_is_not(position: str, build_positional: Callable[..., Any]) -> None:
    pos = _positional(build_positional, position)
    x = torch.randn(1, T, D)
    y = x.clone()
    y[:, 8:] = torch.randn(1, T - 8, D)
    gpt, bert = _backbone("gpt").eval(), _backbone("bert").eval()
    assert torch.allclose(gpt(x, pos)[:, :8], gpt(y, pos)[:, :8], atol=1e-6)
    assert not torch.allclose(gpt(x, pos)[:, 8:], gpt(y, pos)[:, 8:], atol=1e-4)
    assert not torch.allclose(bert(x, pos)[:, :8], bert(y, pos)[:, :8], atol=1e-4)


@pytest.mark.parametrize("position", POSITIONS)
def test_positions_change_the_output(position: str, build_positional: Callable[..., Any]) -> None:
    """Order matters once positions are present: the same tokens permuted give a different last state."""
    model, pos = _backbone("bert").eval(), _positional(build_positional, position)
    x = torch.randn(1, T, D)
    perm = torch.randperm(T)
    plain = model(x)[:, perm]
    assert torch.allclose(plain, model(x[:, perm]), atol=1e-5)  # without positions: permutation-equivariant
    assert not torch.allclose(model(x, pos)[:, perm], model(x[:, perm], pos), atol=1e-4)


def test_alibi_slopes_match_the_formula() -> None:
    assert alibi_slopes(8) == pytest.approx([2.0 ** -(i + 1) for i in range(8)])
    # 6 heads: the 4-head slopes 2^-2, 2^-4, 2^-6, 2^-8, then every other 8-head slope: 2^-1, 2^-3.
    assert alibi_slopes(6) == pytest.approx([2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8, 2.0**-1, 2.0**-3])
    assert len(alibi_slopes(12)) == 12 and len(set(alibi_slopes(12))) == 12


def test_alibi_bias_values_and_cache_alignment() -> None:
    alibi = AlibiPositions(6)
    bias = alibi.bias(4, 4)
    assert bias.shape == (6, 4, 4)
    slopes = torch.tensor(alibi_slopes(6))
    assert torch.allclose(bias[:, 3, 0], -3 * slopes)
    assert torch.allclose(bias[:, 0, 3], -3 * slopes)  # symmetric: serves the encoder too
    assert torch.allclose(alibi.bias(1, 4)[:, 0], bias[:, 3])  # a decoded token is the last query


def _old_alibi(slopes: torch.Tensor, q_len: int, k_len: int) -> torch.Tensor:
    """The ALiBi formula of the length-based contract, kept as the reference for contiguous positions."""
    i = torch.arange(k_len - q_len, k_len).unsqueeze(1)
    j = torch.arange(k_len).unsqueeze(0)
    return -slopes[:, None, None] * (i - j).abs().float()


def test_alibi_over_positions_equals_the_old_formula() -> None:
    alibi = AlibiPositions(6)
    for q_len, k_len in ((5, 5), (1, 9), (3, 7)):
        new = alibi.bias(torch.arange(k_len - q_len, k_len), torch.arange(k_len))
        assert torch.equal(new, _old_alibi(alibi.slopes, q_len, k_len))


def test_alibi_honours_explicit_and_batched_positions() -> None:
    alibi = AlibiPositions(4)
    pos = torch.tensor([[0, 1, 2, 3], [0, 2, 4, 6]])  # (B, T): the second sample spaced twice as far
    bias = alibi.bias(pos, pos)
    assert bias.shape == (2, 4, 4, 4)
    assert torch.equal(bias[0], alibi.bias(4, 4)) and torch.equal(bias[1], 2 * alibi.bias(4, 4))
    with pytest.raises(ValueError, match=r"'alibi': positions must be \(T,\) or \(B, T\)"):
        alibi.bias(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2))
    model = _backbone("bert").eval()
    x = torch.randn(2, 4, D)
    assert torch.allclose(model(x, alibi, torch.arange(4)), model(x, alibi), atol=1e-6)
    assert not torch.allclose(model(x, alibi, pos)[1], model(x, alibi)[1], atol=1e-4)


def _rope_score(rope: RotaryPositions, q: torch.Tensor, k: torch.Tensor, m: int, n: int) -> torch.Tensor:
    """``q`` rotated to position m dotted with ``k`` rotated to position n."""
    qr, _ = rope.rotate(q, q, torch.tensor([m]))
    kr, _ = rope.rotate(k, k, torch.tensor([n]))
    return (qr * kr).sum()


@pytest.mark.parametrize("convention", ["rotate-half", "interleaved"])
def test_rope_depends_on_relative_position_only(convention: str) -> None:
    rope = RotaryPositions(8, convention=convention)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    assert torch.allclose(_rope_score(rope, q, k, 3, 1), _rope_score(rope, q, k, 12, 10), atol=1e-5)
    assert not torch.allclose(_rope_score(rope, q, k, 3, 1), _rope_score(rope, q, k, 3, 2), atol=1e-4)
    qr, _ = rope.rotate(q, k, torch.tensor([5]))
    assert torch.allclose(qr.norm(), q.norm(), atol=1e-5)  # a rotation keeps lengths


def test_rope_rotate_half_matches_transformers() -> None:
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    rope = RotaryPositions(16, base=500.0)
    q, k = torch.randn(2, 3, 7, 16), torch.randn(2, 3, 7, 16)
    positions = torch.arange(7)
    inv = 1.0 / (500.0 ** (torch.arange(0, 16, 2).float() / 16))
    freqs = torch.outer(positions.float(), inv)
    emb = torch.cat((freqs, freqs), dim=-1)
    ref_q, ref_k = llama.apply_rotary_pos_emb(q, k, emb.cos()[None], emb.sin()[None])
    ours_q, ours_k = rope.rotate(q, k, positions)
    assert torch.allclose(ours_q, ref_q, atol=1e-5) and torch.allclose(ours_k, ref_k, atol=1e-5)


def test_rope_batched_positions() -> None:
    rope = RotaryPositions(8)
    q = torch.randn(2, 2, 3, 8)
    pos = torch.tensor([[0, 1, 2], [5, 6, 7]])
    qr, _ = rope.rotate(q, q, pos)
    q1, _ = rope.rotate(q[1:], q[1:], pos[1])
    assert torch.allclose(qr[1:], q1, atol=1e-6)


def test_sinusoidal_table_and_additive_forward() -> None:
    table = sinusoid_table(10, 6)
    assert table[3, 0] == pytest.approx(math.sin(3.0))
    assert table[3, 1] == pytest.approx(math.cos(3.0))
    assert table[3, 2] == pytest.approx(math.sin(3.0 / 10000 ** (2 / 6)))
    enc = SinusoidalPositions(6, max_positions=4)
    x = torch.zeros(2, 9, 6)  # longer than max_positions: the fixed table grows
    assert torch.allclose(enc(x)[0], table[:9], atol=1e-6)
    offset = enc(torch.zeros(1, 2, 6), torch.tensor([7, 8]))
    assert torch.allclose(offset[0], table[7:9], atol=1e-6)


def test_learned_positions_errors() -> None:
    enc = LearnedPositions(8, max_positions=4)
    with pytest.raises(ValueError, match=r"positions must lie in \[0, 4\)"):
        enc(torch.zeros(1, 5, 8))
    with pytest.raises(ValueError, match="embed_dim 8"):
        enc(torch.zeros(1, 2, 6))
    with pytest.raises(ValueError, match="embed_dim is not set"):
        get_registry().build("positional_encoder", "learned")


def test_config_errors_name_the_key() -> None:
    reg = get_registry()
    with pytest.raises(ValueError, match="heads is not set"):
        reg.build("positional_encoder", "alibi")
    with pytest.raises(ConfigError, match="convention"):
        reg.build("positional_encoder", "rope", convention="sideways")
    with pytest.raises(ValueError, match="not divisible by heads"):
        reg.build("positional_encoder", "rope", embed_dim=30, heads=4)
    with pytest.raises(ConfigError, match="divisible by heads"):
        reg.build("backbone", "gpt", embed_dim=30, heads=4)
    with pytest.raises(ConfigError, match="activation"):
        reg.build("backbone", "gpt", activation="tanh")


def test_specs_declare_ports() -> None:
    reg = get_registry()
    modes = {n: reg.get("positional_encoder", n).provides["position_mode"] for n in POSITIONS}
    assert modes == {"sinusoidal": "additive", "learned": "additive", "rope": "rotary", "alibi": "attention_bias"}
    for n in POSITIONS:
        assert reg.get("positional_encoder", n).provides["grid"] == 1
    gpt, bert = reg.get("backbone", "gpt"), reg.get("backbone", "bert")
    assert gpt.provides["causal"] is True and bert.provides["causal"] is False
    assert set(gpt.provides["position_modes"]) == {"additive", "rotary", "attention_bias"}
    assert gpt.provides["embed_dim"] is None and gpt.provides["max_positions"] is None


def test_backbone_counts() -> None:
    model = _backbone("gpt")
    assert model.embed_dim == D and model.causal is True
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())
    assert model.flops_per_token(64) > 6 * model.num_parameters()


def test_explicit_positions_are_checked() -> None:
    enc = SinusoidalPositions(8)
    with pytest.raises(ValueError, match="positions must be >= 0"):
        enc(torch.zeros(1, 2, 8), torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="positions cover 3 tokens, the input has 2"):
        enc(torch.zeros(1, 2, 8), torch.tensor([0, 1, 2]))


def test_every_model_component_is_registered_and_documented() -> None:
    from registry_core import describe_fields
    from registry_core._schema import resolve_config_class

    reg = get_registry()
    names = {
        "positional_encoder": POSITIONS,
        "backbone": ["gpt", "bert"],
        "objective": ["next-token", "masked-lm"],
        "evaluator": ["perplexity"],
        "weights": ["hf-gpt2"],
    }
    for kind, found in names.items():
        for name in found:
            spec = reg.get(kind, name)
            assert spec.summary and spec.modality == "text"
            cls = resolve_config_class(spec)
            assert cls is not None
            assert all(f.help for f in describe_fields(cls)), f"{kind} {name} has a field without help"
