"""Checkpoints into the whole built model: key tables, part groups, missing and unexpected keys by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from registry_core.nn import CheckpointError, KeyRule, KeyTable, Transformer, load_parts, part_tensors
from registry_core.pipeline._model import PipelineModel

D, DEPTH, PATCH = 16, 2, 12


class TinyReconstruction(nn.Module):
    """An objective with modules of its own (mask token, decoder), as MAE's is: the ``decoder`` group."""

    def __init__(self) -> None:
        super().__init__()
        self.mask_token = nn.Parameter(torch.zeros(1, 1, D))
        self.decoder = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, PATCH))

    def bind(self, parts: object) -> None:
        pass

    def forward(self, parts: object, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        x = parts.embed(batch["patches"])  # type: ignore[attr-defined]
        h = parts.backbone(x, None, None)  # type: ignore[attr-defined]
        return ((self.decoder(h + self.mask_token) - batch["patches"]) ** 2).mean(), {}


def _model(seed: int, head: bool = False) -> PipelineModel:
    torch.manual_seed(seed)
    backbone = Transformer(D, DEPTH, 2, causal=False)
    return PipelineModel(nn.Linear(PATCH, D), None, backbone, TinyReconstruction(), nn.Linear(D, 3) if head else None)


#: A foreign naming of the same model (a Prithvi-like layout, its decoder weight stored transposed).
THEIRS = KeyTable(
    name="toy-mae",
    rules=(
        KeyRule("embed.weight", "encoder.patch_embed.proj.weight"),
        KeyRule("embed.bias", "encoder.patch_embed.proj.bias"),
        KeyRule("backbone.ln_f.weight", "encoder.norm.weight"),
        KeyRule("backbone.ln_f.bias", "encoder.norm.bias"),
        *KeyTable.layered("backbone.blocks.{i}.", "encoder.blocks.{i}.", (
            ("ln1.weight", "norm1.weight", False), ("ln1.bias", "norm1.bias", False),
            ("attn.qkv.weight", "attn.qkv.weight", False), ("attn.qkv.bias", "attn.qkv.bias", False),
            ("attn.proj.weight", "attn.proj.weight", False), ("attn.proj.bias", "attn.proj.bias", False),
            ("ln2.weight", "norm2.weight", False), ("ln2.bias", "norm2.bias", False),
            ("mlp.fc.weight", "mlp.fc1.weight", False), ("mlp.fc.bias", "mlp.fc1.bias", False),
            ("mlp.proj.weight", "mlp.fc2.weight", False), ("mlp.proj.bias", "mlp.fc2.bias", False),
        )),
        KeyRule("objective.mask_token", "decoder.mask_token"),
        KeyRule("objective.decoder.0.weight", "decoder.decoder_norm.weight"),
        KeyRule("objective.decoder.0.bias", "decoder.decoder_norm.bias"),
        KeyRule("objective.decoder.1.weight", "decoder.decoder_pred.weight", transpose=True),
        KeyRule("objective.decoder.1.bias", "decoder.decoder_pred.bias"),
    ),
    ignore=("decoder.pos_embed",),  # a fixed table we recompute
)


def _their_checkpoint(tmp_path: Path, seed: int = 1) -> tuple[Path, dict[str, torch.Tensor]]:
    """A safetensors file in their naming, exported from a model with other weights than the target's."""
    source = _model(seed)
    with torch.no_grad():
        source.objective.mask_token.normal_()
    ours = {k: v.detach().clone() for k, v in part_tensors(source.parts).items()}
    converted = THEIRS.convert(ours, "theirs")
    assert converted.unmatched == []
    tensors = {k: v.contiguous() for k, v in converted.tensors.items()}
    tensors["decoder.pos_embed"] = torch.zeros(1, 4, D)
    path = tmp_path / "toy-mae.safetensors"
    save_file(tensors, str(path))
    return path, ours


def test_encoder_and_decoder_checkpoint_fills_both(tmp_path: Path) -> None:
    path, ours = _their_checkpoint(tmp_path)
    target = _model(seed=7)
    assert not torch.equal(target.objective.decoder[1].weight, ours["objective.decoder.1.weight"])
    report = load_parts(target.parts, load_file(str(path)), fills=("encoder", "decoder"), table=THEIRS, source=str(path))
    assert sorted(report.loaded) == sorted(ours)  # every tensor of both groups, and nothing skipped
    assert report.skipped == []
    for key, value in part_tensors(target.parts).items():
        assert torch.equal(value, ours[key]), key
    # The transposed rule really transposes: their decoder weight is (D, PATCH), ours (PATCH, D).
    assert load_file(str(path))["decoder.decoder_pred.weight"].shape == (D, PATCH)


def test_encoder_only_fill_skips_the_decoder_and_leaves_it_alone(tmp_path: Path) -> None:
    path, ours = _their_checkpoint(tmp_path)
    target = _model(seed=7, head=True)
    decoder_before = target.objective.decoder[1].weight.detach().clone()
    report = load_parts(target.parts, load_file(str(path)), fills=("encoder",), table=THEIRS)
    assert set(report.skipped) == {k for k in ours if k.startswith("objective.")}
    assert torch.equal(target.objective.decoder[1].weight, decoder_before)
    assert torch.equal(target.backbone.blocks[1].mlp.fc.weight, ours["backbone.blocks.1.mlp.fc.weight"])


def test_missing_key_is_named_in_both_namings(tmp_path: Path) -> None:
    path, _ = _their_checkpoint(tmp_path)
    tensors = load_file(str(path))
    del tensors["encoder.blocks.1.norm2.bias"]
    target = _model(seed=7)
    before = target.embed.weight.detach().clone()
    with pytest.raises(CheckpointError, match=r"missing: backbone\.blocks\.1\.ln2\.bias \(encoder\.blocks\.1\.norm2\.bias\)"):
        load_parts(target.parts, tensors, fills=("encoder", "decoder"), table=THEIRS, source=str(path))
    assert torch.equal(target.embed.weight, before)  # nothing was copied before the check failed


def test_unexpected_key_is_named(tmp_path: Path) -> None:
    path, _ = _their_checkpoint(tmp_path)
    tensors = load_file(str(path))
    tensors["encoder.blocks.5.norm1.weight"] = torch.ones(D)  # a layer the model does not have
    tensors["encoder.cls_token"] = torch.zeros(1, 1, D)  # a tensor no rule knows
    with pytest.raises(CheckpointError) as info:
        load_parts(_model(seed=7).parts, tensors, fills=("encoder", "decoder"), table=THEIRS, source=str(path))
    message = str(info.value)
    assert message.startswith(str(path))
    assert "backbone.blocks.5.ln1.weight (encoder.blocks.5.norm1.weight)" in message
    assert "encoder.cls_token" in message


def test_a_head_group_must_be_complete_when_filled(tmp_path: Path) -> None:
    source = _model(seed=3, head=True)
    state = {k: v.detach().clone() for k, v in part_tensors(source.parts).items() if k != "head.bias"}
    with pytest.raises(CheckpointError, match=r"of the model's encoder \+ head are missing: head\.bias"):
        load_parts(_model(seed=4, head=True).parts, state, fills=("encoder", "head"))


def test_shape_mismatch_and_unknown_group_are_errors() -> None:
    source = _model(seed=3)
    state = {k: v.detach().clone() for k, v in part_tensors(source.parts, ("encoder",)).items()}
    state["embed.weight"] = torch.zeros(D, PATCH + 1)
    with pytest.raises(CheckpointError, match=r"embed\.weight is \(16, 13\), the model's is \(16, 12\)"):
        load_parts(_model(seed=4).parts, state)
    with pytest.raises(ValueError, match="unknown part group"):
        load_parts(_model(seed=4).parts, {}, fills=("encoderr",))


def test_padded_rows_fill_the_first_rows_and_zero_the_rest() -> None:
    model = PipelineModel(nn.Embedding(10, D), None, Transformer(D, 1, 2, causal=True), TinyReconstruction())
    rest = {f"x.{k}": v.detach().clone() for k, v in part_tensors(model.parts, ("encoder",)).items() if k != "embed.weight"}
    table = KeyTable("padded", (KeyRule("embed.weight", "wte", pad_rows=True), *(KeyRule(k[2:], k) for k in rest)))
    load_parts(model.parts, {"wte": torch.ones(7, D), **rest}, table=table)
    assert torch.equal(model.embed.weight[:7], torch.ones(7, D))
    assert torch.count_nonzero(model.embed.weight[7:]) == 0
    assert table.theirs_for("embed.weight") == "wte"


def test_rules_need_the_same_placeholders_and_one_source_per_key() -> None:
    with pytest.raises(ValueError, match="same placeholders"):
        KeyRule("backbone.blocks.{i}.w", "h.w")
    table = KeyTable("dup", (KeyRule("embed.weight", "a"), KeyRule("embed.weight", "b")))
    with pytest.raises(ValueError, match=r"both map to 'embed\.weight'"):
        table.convert({"a": torch.zeros(1), "b": torch.zeros(1)}, "ours")
