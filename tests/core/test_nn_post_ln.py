"""Post-LN blocks (BERT, the original transformer) against torch's own ``nn.TransformerEncoderLayer``, and the
post-LN stack's layout: the LayerNorm on the input, none at the end, token-type embeddings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from registry_core.nn import TORCH_ENCODER_LAYER_KEYS, Block, Transformer

D, H, FF = 32, 4, 80


def reference(norm_first: bool, activation: str) -> nn.TransformerEncoderLayer:
    """torch's layer with its norms and biases moved off their init (1, 0), so a swapped norm cannot hide."""
    torch.manual_seed(1)
    layer = nn.TransformerEncoderLayer(D, H, dim_feedforward=FF, dropout=0.0, activation=activation,
                                       batch_first=True, norm_first=norm_first, layer_norm_eps=1e-6)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.startswith("norm") and name.endswith("weight"):
                p.normal_(1.0, 0.2)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.1)
    return layer.eval()


@pytest.mark.parametrize(("norm", "activation"), [("post", "gelu"), ("post", "relu"), ("pre", "gelu")])
def test_a_block_is_torchs_encoder_layer(norm: str, activation: str) -> None:
    theirs = reference(norm == "pre", activation)
    ours = Block(D, H, mlp_ratio=FF / D, activation=activation, eps=1e-6, norm=norm).eval()
    converted = TORCH_ENCODER_LAYER_KEYS.convert(theirs.state_dict(), "ours")
    assert not converted.unmatched
    ours.load_state_dict(converted.tensors, strict=True)
    x = torch.randn(3, 11, D, generator=torch.Generator().manual_seed(2))
    pad = torch.zeros(3, 11, dtype=torch.bool)
    pad[1, 7:] = True  # torch: True = padding; ours: an additive mask, -inf on padded keys
    mask = torch.zeros(3, 1, 1, 11).masked_fill(pad[:, None, None, :], float("-inf"))
    with torch.no_grad():
        expected = theirs(x, src_key_padding_mask=pad)
        got = ours(x, attn_mask=mask)
    keep = ~pad
    assert (got - expected)[keep].abs().max().item() <= 1e-5
    # and back: our tensors in torch's naming load into a fresh layer that computes the same
    back = TORCH_ENCODER_LAYER_KEYS.convert(ours.state_dict(), "theirs").tensors
    fresh = nn.TransformerEncoderLayer(D, H, dim_feedforward=FF, dropout=0.0, activation=activation, batch_first=True,
                                       norm_first=norm == "pre", layer_norm_eps=1e-6).eval()
    fresh.load_state_dict(back, strict=True)
    with torch.no_grad():
        assert torch.equal(fresh(x), theirs(x))


def test_a_post_ln_stack_normalises_its_input_and_adds_token_types() -> None:
    torch.manual_seed(0)
    stack = Transformer(D, 2, H, causal=False, norm="post", type_vocab_size=2).eval()
    x = torch.randn(2, 5, D)
    types = torch.tensor([[0, 0, 1, 1, 1], [0, 0, 0, 0, 0]])
    with torch.no_grad():
        h = stack.ln_f(x + stack.token_type(types))
        for block in stack.blocks:
            h = block(h)
        assert torch.allclose(stack(x, token_types=types), h, atol=1e-6)  # no LayerNorm after the blocks
        assert torch.equal(stack(x), stack(x, token_types=torch.zeros(2, 5, dtype=torch.long)))  # type 0 by default
    with pytest.raises(ValueError, match=r"token_types must be \(B, T\) = \(2, 5\), got \(2, 4\)"):
        stack(x, token_types=types[:, :4])
    with pytest.raises(ValueError, match="no token-type embedding"):
        Transformer(D, 1, H, causal=False)(x, token_types=types)
    with pytest.raises(ValueError, match="norm must be one of pre, post"):
        Transformer(D, 1, H, causal=False, norm="sandwich")


def test_pre_ln_stacks_draw_the_same_weights_as_before() -> None:
    """Adding the options changed nothing for existing models: same seed, same tensors."""
    torch.manual_seed(0)
    a = Transformer(D, 2, H, causal=True).state_dict()
    torch.manual_seed(0)
    b = Transformer(D, 2, H, causal=True, norm="pre", type_vocab_size=0).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
