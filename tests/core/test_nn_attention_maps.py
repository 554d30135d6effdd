"""record_attention: the recomputed weights are the ones SDPA used (causal, rotary, padding, bias), outputs untouched."""

from __future__ import annotations

import pytest
import torch

from registry_core.nn import SelfAttention, Transformer, attention_mask, attention_probabilities, record_attention

pytestmark = pytest.mark.usefixtures("torch_one_thread")


class _Rope:
    """A rotary encoder for the stack: rotate-half RoPE at positions 0..T-1."""

    mode = "rotary"
    grid = 1

    def rotate(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor | None = None):
        from registry_core.nn import apply_rotary, rotary_table

        cos, sin = rotary_table(q.shape[-2], q.shape[-1])
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)


def _attention_output(attn: SelfAttention, x: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """The layer's output rebuilt from the recorded weights and its own values."""
    _, _, v = attn.project(x)
    b, t, d = x.shape
    return attn.proj((probs @ v).transpose(1, 2).reshape(b, t, d))


@pytest.mark.parametrize("causal", [True, False])
def test_recorded_weights_rebuild_the_layer_output(causal: bool) -> None:
    torch.manual_seed(0)
    attn = SelfAttention(16, 4).eval()
    x = torch.randn(2, 7, 16)
    keep = torch.ones(2, 7, dtype=torch.bool)
    keep[1, 5:] = False
    bias = torch.randn(4, 7, 7)
    mask, is_causal = attention_mask(7, 7, causal=causal, bias=bias, keep=keep)
    with record_attention(attn) as weights:
        out = attn(x, attn_mask=mask, is_causal=is_causal)
    probs = weights[0]
    assert probs.shape == (2, 4, 7, 7)
    assert torch.allclose(probs.sum(-1), torch.ones(2, 4, 7))
    assert torch.allclose(_attention_output(attn, x, probs), out, atol=1e-5)
    assert float(probs[1, :, :, 5:].max()) == 0.0  # padding keys get nothing
    if causal:
        assert float(probs.triu(1).abs().max()) == 0.0


def test_a_causal_rotary_stack_records_a_lower_triangle_and_keeps_its_output() -> None:
    torch.manual_seed(0)
    stack = Transformer(16, 2, 4, causal=True).eval()
    x = torch.randn(1, 9, 16)
    before = stack(x, _Rope())
    with record_attention(stack.blocks[-1].attn) as weights:
        after = stack(x, _Rope())
    assert torch.equal(before, after) and len(weights) == 1
    probs = weights[0][0]
    assert float(probs.triu(1).abs().max()) == 0.0 and float(probs[:, 0, 0].min()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="KV cache"), record_attention(stack.blocks[0].attn):
        stack(x, _Rope(), cache=stack.new_cache(1, 16))
    with pytest.raises(TypeError, match=r"needs a registry_core\.nn\.SelfAttention"), \
            record_attention(stack.blocks[-1]):  # type: ignore[arg-type]
        pass


def test_probabilities_of_a_bidirectional_layer_cover_every_key() -> None:
    torch.manual_seed(1)
    attn = SelfAttention(8, 2).eval()
    with torch.no_grad():
        probs = attention_probabilities(attn, torch.randn(1, 5, 8))
    assert float(probs.min()) > 0.0
