"""hf-gpt2 weights: a small random GPT2LMHeadModel imported into gpt + learned + next-token, and exported back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from registry_core import get_registry
from registry_core.interfaces import ModelParts

transformers = pytest.importorskip("transformers")
from registry_llm.weights.hf_gpt2 import export_hf_gpt2, gpt_options, pipeline_options  # noqa: E402

VOCAB, EMBED, LAYERS, HEADS, CTX = 100, 32, 2, 4, 64


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def hf_dir(tmp_path: Path) -> tuple[Path, Any]:
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_embd=EMBED, n_layer=LAYERS, n_head=HEADS, n_positions=CTX, vocab_size=VOCAB,
        bos_token_id=0, eos_token_id=0, initializer_range=0.2, layer_norm_epsilon=1e-3,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    # Norms and biases away from their init (1, 0) and a non-default epsilon: a loader that took GPT-2's
    # epsilon, GELU form or attention scale on trust instead of from the config would miss the logits.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.normal_(1.0, 0.1)
                module.bias.normal_(0.0, 0.05)
    folder = tmp_path / "gpt2"
    model.save_pretrained(folder)
    return folder, model


def _ours(folder: Path, rows: int = VOCAB) -> tuple[ModelParts, Any]:
    reg = get_registry()
    backbone = reg.build("backbone", "gpt", **gpt_options(folder))
    positional = reg.build("positional_encoder", "learned", embed_dim=EMBED, max_positions=CTX)
    parts = ModelParts(nn.Embedding(rows, EMBED), positional, backbone)
    objective = reg.build("objective", "next-token", vocab_size=VOCAB)
    objective.bind(parts)
    reg.build("weights", "hf-gpt2", path=folder).load_into(parts)
    backbone.eval()
    return parts, objective


@pytest.mark.parametrize("rows", [VOCAB, 128])
def test_import_gives_the_same_logits(hf_dir: tuple[Path, Any], rows: int) -> None:
    folder, model = hf_dir
    parts, objective = _ours(folder, rows)
    ids = torch.randint(0, VOCAB, (3, 40))
    with torch.no_grad():
        ref = model(ids).logits
        got = objective.logits(parts, ids)
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() <= 1e-4
    if rows > VOCAB:
        assert torch.count_nonzero(parts.embed.weight[VOCAB:]) == 0


def test_greedy_generation_matches_transformers(hf_dir: tuple[Path, Any]) -> None:
    from registry_llm.generation import generate

    folder, model = hf_dir
    parts, objective = _ours(folder)
    prompt = [3, 14, 15, 92, 65]
    ours = generate(parts, objective, prompt, max_new_tokens=12, temperature=0.0)
    ref = model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False, pad_token_id=0,
                         eos_token_id=None)[0, len(prompt):].tolist()
    assert ours == ref


def test_export_round_trip(hf_dir: tuple[Path, Any], tmp_path: Path) -> None:
    folder, model = hf_dir
    parts, objective = _ours(folder, rows=128)
    out = export_hf_gpt2(parts, tmp_path / "exported", vocab_size=VOCAB)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    back = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    ids = torch.randint(0, VOCAB, (2, 30))
    with torch.no_grad():
        assert (back(ids).logits - model(ids).logits).abs().max().item() <= 1e-5
    again, obj2 = _ours(out)
    with torch.no_grad():
        assert torch.allclose(obj2.logits(again, ids), objective.logits(parts, ids), atol=1e-5)


def test_meta_files_and_options(hf_dir: tuple[Path, Any]) -> None:
    folder, _ = hf_dir
    (folder / "vocab.json").write_text("{}")
    weights = get_registry().build("weights", "hf-gpt2", path=str(folder))
    assert weights.meta["embed_dim"] == EMBED and weights.meta["activation"] == "gelu-tanh"
    assert [p.name for p in weights.files()] == ["config.json", "model.safetensors", "vocab.json"]
    opts = pipeline_options(folder)
    assert opts["backbone"] == ("gpt", gpt_options(folder))
    assert opts["positional_encoder"] == ("learned", {"max_positions": CTX})
    assert opts["tokenizer"] == ("bpe", {"path": str(folder)})


def test_mismatched_backbone_is_refused(hf_dir: tuple[Path, Any]) -> None:
    folder, _ = hf_dir
    reg = get_registry()
    opts = {**gpt_options(folder), "depth": 3, "activation": "gelu"}
    parts = ModelParts(nn.Embedding(VOCAB, EMBED),
                       reg.build("positional_encoder", "learned", embed_dim=EMBED, max_positions=CTX),
                       reg.build("backbone", "gpt", **opts))
    with pytest.raises(ValueError, match=r"depth=3 \(checkpoint: 2\); activation='gelu'"):
        reg.build("weights", "hf-gpt2", path=folder).load_into(parts)
    parts.positional = reg.build("positional_encoder", "rope", embed_dim=EMBED, heads=HEADS)
    parts.backbone = reg.build("backbone", "gpt", **gpt_options(folder))
    with pytest.raises(TypeError, match="must be 'learned'"):
        reg.build("weights", "hf-gpt2", path=folder).load_into(parts)


def test_bad_files_are_clear_errors_and_leave_the_model_untouched(hf_dir: tuple[Path, Any], tmp_path: Path) -> None:
    folder, _ = hf_dir
    reg = get_registry()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        reg.build("weights", "hf-gpt2", path=tmp_path / "nowhere")
    parts, _ = _ours(folder)
    before = {k: v.clone() for k, v in parts.backbone.state_dict().items()}
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(ValueError, match="cannot read"):
        reg.build("weights", "hf-gpt2", path=folder).load_into(parts)
    assert all(torch.equal(before[k], v) for k, v in parts.backbone.state_dict().items())
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="only safetensors"):
        reg.build("weights", "hf-gpt2", path=folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "tie_word_embeddings": False}))
    with pytest.raises(ValueError, match="untied lm_head"):
        gpt_options(folder)


def test_export_with_a_trained_bpe_tokenizer(tmp_path: Path) -> None:
    """A model over a real bpe tokenizer (padded table) exports a folder HF loads, tokenizer included."""
    reg = get_registry()
    tok = reg.build("tokenizer", "bpe", vocab_size=300)
    tok.train(["the cat sat on the mat, and the dog sat on the log."] * 40)
    torch.manual_seed(1)
    backbone = reg.build("backbone", "gpt", embed_dim=EMBED, depth=1, heads=HEADS, max_positions=CTX,
                         activation="gelu-tanh")
    parts = ModelParts(tok.embedding(EMBED),
                       reg.build("positional_encoder", "learned", embed_dim=EMBED, max_positions=CTX), backbone)
    objective = reg.build("objective", "next-token", vocab_size=tok.vocab_size)
    objective.bind(parts)
    out = export_hf_gpt2(parts, tmp_path / "export", vocab_size=tok.vocab_size, tokenizer=tok)
    assert (out / "tokenizer.json").is_file()
    hf_tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(out / "tokenizer.json"))
    ids = tok.encode("the dog sat on the mat")
    assert hf_tok(["the dog sat on the mat"], add_special_tokens=False)["input_ids"][0] == ids
    back = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    x = torch.tensor([ids])
    with torch.no_grad():
        assert (back(x).logits - objective.logits(parts, x.clone())).abs().max().item() <= 1e-5
    reloaded = reg.build("weights", "hf-gpt2", path=out)
    assert reloaded.meta["vocab_size"] == tok.vocab_size
    assert [p.name for p in reloaded.files()] == ["config.json", "model.safetensors", "tokenizer.json"]
