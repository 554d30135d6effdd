"""Key rules that change a tensor's layout: ``fold`` (a missing size-1 dim) and ``part`` (pieces of a fused tensor)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from registry_core.interfaces import ModelParts
from registry_core.nn import CheckpointError, KeyRule, KeyTable, Transformer, load_parts, part_tensors

D = 8

#: A ViTMAE-like naming: a Conv2d patch projection and separate q, k, v under one layer prefix.
TABLE = KeyTable(
    name="toy-vit",
    rules=(
        KeyRule("embed.proj.weight", "patch.weight", fold=2),
        KeyRule("embed.proj.bias", "patch.bias"),
        *(KeyRule("backbone.blocks.{i}.attn.qkv." + p, "layer.{i}." + n + "." + p, part=(k, 3))
          for p in ("weight", "bias") for k, n in enumerate(("query", "key", "value"))),
        KeyRule("backbone.blocks.{i}.ln1.weight", "layer.{i}.norm.weight"),
    ),
)


def _ours(layers: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    out = {"embed.proj.weight": torch.randn(D, 3, 1, 4, 4, generator=g), "embed.proj.bias": torch.randn(D, generator=g)}
    for i in range(layers):
        out[f"backbone.blocks.{i}.attn.qkv.weight"] = torch.randn(3 * D, D, generator=g)
        out[f"backbone.blocks.{i}.attn.qkv.bias"] = torch.randn(3 * D, generator=g)
        out[f"backbone.blocks.{i}.ln1.weight"] = torch.randn(D, generator=g)
    return out


def test_round_trip_ours_theirs_ours_is_equal() -> None:
    ours = _ours()
    theirs = TABLE.convert(ours, "theirs")
    assert theirs.unmatched == [] and theirs.incomplete == {}
    back = TABLE.convert(theirs.tensors, "ours")
    assert back.unmatched == [] and back.incomplete == {}
    assert set(back.tensors) == set(ours)
    for key, value in ours.items():
        assert torch.equal(back.tensors[key], value), key


def test_fold_drops_and_restores_the_size_one_dim() -> None:
    theirs = TABLE.convert(_ours(), "theirs").tensors
    assert tuple(theirs["patch.weight"].shape) == (D, 3, 4, 4)
    ours = TABLE.convert({"patch.weight": torch.zeros(D, 3, 4, 4)}, "ours").tensors
    assert tuple(ours["embed.proj.weight"].shape) == (D, 3, 1, 4, 4)


def test_fold_of_a_dim_that_is_not_one_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"embed.proj.weight.*\(8, 3, 2, 4, 4\).*size 1"):
        TABLE.convert({"embed.proj.weight": torch.zeros(D, 3, 2, 4, 4)}, "theirs")


def test_parts_split_in_order_and_join_back() -> None:
    ours = _ours(layers=1)
    qkv = ours["backbone.blocks.0.attn.qkv.weight"]
    theirs = TABLE.convert(ours, "theirs").tensors
    assert torch.equal(theirs["layer.0.query.weight"], qkv[:D])
    assert torch.equal(theirs["layer.0.key.weight"], qkv[D : 2 * D])
    assert torch.equal(theirs["layer.0.value.weight"], qkv[2 * D :])
    # their pieces in any order still join as q, k, v
    shuffled = dict(reversed(list(theirs.items())))
    back = TABLE.convert(shuffled, "ours")
    assert torch.equal(back.tensors["backbone.blocks.0.attn.qkv.weight"], qkv)
    assert "layer.0.query.weight" in back.source_of["backbone.blocks.0.attn.qkv.weight"]


def test_a_missing_piece_is_reported_by_name() -> None:
    theirs = TABLE.convert(_ours(layers=1), "theirs").tensors
    del theirs["layer.0.value.weight"]
    got = TABLE.convert(theirs, "ours")
    assert "backbone.blocks.0.attn.qkv.weight" not in got.tensors
    assert got.incomplete == {"backbone.blocks.0.attn.qkv.weight": ["layer.0.value.weight"]}
    assert sorted(got.unmatched) == ["layer.0.key.weight", "layer.0.query.weight"]
    assert got.problems() == ["backbone.blocks.0.attn.qkv.weight is made of pieces; missing layer.0.value.weight"]
    assert TABLE.theirs_for("backbone.blocks.0.attn.qkv.weight") == (
        "layer.0.query.weight + layer.0.key.weight + layer.0.value.weight"
    )


def test_a_piece_given_twice_is_an_error() -> None:
    rules = (*TABLE.rules, KeyRule("backbone.blocks.{i}.attn.qkv.weight", "alt.{i}.q", part=(0, 3)))
    with pytest.raises(ValueError, match=r"parts 0\.\.count-1"):
        KeyTable("bad", rules)


def test_pieces_must_split_evenly_on_export() -> None:
    with pytest.raises(ValueError, match=r"\(7, 8\).*3 equal pieces"):
        TABLE.convert({"backbone.blocks.0.attn.qkv.weight": torch.zeros(7, D)}, "theirs")


@pytest.mark.parametrize("part", [(3, 3), (0, 1), (-1, 3)])
def test_bad_part_is_refused(part: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="part must be"):
        KeyRule("a", "b", part=part)


def test_part_and_pad_rows_do_not_combine() -> None:
    with pytest.raises(ValueError, match="pad_rows"):
        KeyRule("a", "b", part=(0, 2), pad_rows=True)


class _Embed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv3d(3, D, kernel_size=(1, 4, 4), stride=(1, 4, 4))


def test_load_parts_through_fold_and_parts() -> None:
    torch.manual_seed(1)
    source = ModelParts(_Embed(), None, Transformer(D, 1, 2, causal=False))
    target = ModelParts(_Embed(), None, Transformer(D, 1, 2, causal=False))
    table = KeyTable("toy-vit-full", (*TABLE.rules, *(
        KeyRule(k, "rest." + k) for k in part_tensors(source)
        if k.startswith("backbone.") and not k.startswith(("backbone.blocks.0.attn.qkv.", "backbone.blocks.0.ln1.w"))
    )))
    ours = {k: v.detach().clone() for k, v in part_tensors(source).items()}
    theirs = table.convert(ours, "theirs")
    assert theirs.unmatched == []
    load_parts(target, theirs.tensors, table=table)
    for key, value in part_tensors(target).items():
        assert torch.equal(value, ours[key]), key
    del theirs.tensors["layer.0.key.bias"]
    with pytest.raises(CheckpointError, match=r"missing: backbone.blocks.0.attn.qkv.bias \(layer.0.query.bias \+ "
                                              r"layer.0.key.bias \+ layer.0.value.bias\)"):
        load_parts(target, theirs.tensors, table=table)
