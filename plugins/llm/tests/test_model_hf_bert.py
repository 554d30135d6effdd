"""hf-bert weights: a small random BertForPreTraining (norms and biases off their init) imported into bert
(post-LN, token types, pooler) + learned + masked-lm with BERT's head; logits, pooled output and the export
checked against transformers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from registry_core import get_registry
from registry_core.interfaces import ModelParts

transformers = pytest.importorskip("transformers")
from registry_llm.backbones.bert import pooled  # noqa: E402
from registry_llm.weights.hf_bert import HFBertWeights, bert_options, export_hf_bert  # noqa: E402

VOCAB, EMBED, LAYERS, HEADS, CTX = 120, 32, 2, 4, 64

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=EMBED, num_hidden_layers=LAYERS,
                                     num_attention_heads=HEADS, intermediate_size=80, max_position_embeddings=CTX,
                                     type_vocab_size=2, initializer_range=0.2, layer_norm_eps=1e-12)
    model = transformers.BertForPreTraining(config).eval()
    with torch.no_grad():  # a loader that swapped two norms, or took BERT's epsilon on trust, would miss
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.normal_(1.0, 0.1)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.05)
    folder = tmp_path_factory.mktemp("bert")
    model.save_pretrained(folder)
    return folder


def ours(folder: Path, **objective: Any) -> tuple[ModelParts, Any]:
    reg = get_registry()
    options = bert_options(folder)
    parts = ModelParts(nn.Embedding(VOCAB, EMBED), reg.build("positional_encoder", "learned", embed_dim=EMBED,
                                                             max_positions=CTX),
                       reg.build("backbone", "bert", **options))
    obj = reg.build("objective", "masked-lm", vocab_size=VOCAB, mask_id=3, head="bert", **objective)
    obj.bind(parts)
    parts.objective = obj
    reg.build("weights", "hf-bert", path=str(folder)).load_into(parts)
    parts.backbone.eval()
    return parts, obj


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, VOCAB, (3, 20), generator=g)
    types = torch.zeros_like(ids)
    types[:, 11:] = 1  # segment B
    mask = torch.ones_like(ids)
    mask[2, 14:] = 0  # padding
    return ids, types, mask


def test_logits_and_pooled_output_equal_transformers(bert_dir: Path) -> None:
    assert bert_options(bert_dir)["norm"] == "post" and bert_options(bert_dir)["pooler"] is True
    parts, obj = ours(bert_dir)
    reference = transformers.BertForPreTraining.from_pretrained(bert_dir).eval()
    ids, types, mask = batch()
    real = mask.bool()
    with torch.no_grad():
        theirs = reference(input_ids=ids, token_type_ids=types, attention_mask=mask)
        got = obj.logits(parts, ids, keep=real, token_types=types)
        assert (got - theirs.prediction_logits)[real].abs().max().item() <= 1e-5
        hidden = obj.hidden(parts, ids, keep=real, token_types=types)
        bare = transformers.BertModel.from_pretrained(bert_dir).eval()(input_ids=ids, token_type_ids=types,
                                                                         attention_mask=mask)
        assert (hidden - bare.last_hidden_state)[real].abs().max().item() <= 1e-5
        assert (pooled(parts.backbone, hidden) - bare.pooler_output).abs().max().item() <= 1e-5


def test_export_opens_in_transformers_with_the_same_logits(bert_dir: Path, tmp_path: Path) -> None:
    parts, obj = ours(bert_dir)
    out = export_hf_bert(parts, tmp_path / "exported")
    back = transformers.BertForMaskedLM.from_pretrained(out).eval()
    ids, types, mask = batch()
    with torch.no_grad():
        difference = back(input_ids=ids, token_type_ids=types, attention_mask=mask).logits - obj.logits(
            parts, ids, keep=mask.bool(), token_types=types)
    assert difference[mask.bool()].abs().max().item() <= 1e-5
    # and in again: an export of ours is a checkpoint we load (no pooler: BertForMaskedLM has none)
    again, obj2 = ours(out)
    with torch.no_grad():
        assert torch.allclose(obj2.logits(again, ids, token_types=types), obj.logits(parts, ids, token_types=types),
                              atol=1e-5)


def test_a_backbone_that_is_not_this_bert_is_refused(bert_dir: Path) -> None:
    reg = get_registry()
    parts = ModelParts(nn.Embedding(VOCAB, EMBED), reg.build("positional_encoder", "learned", embed_dim=EMBED,
                                                             max_positions=CTX),
                       reg.build("backbone", "bert", **{**bert_options(bert_dir), "norm": "pre", "layer_norm_eps": 1e-5}))
    before = {k: v.clone() for k, v in parts.backbone.state_dict().items()}
    with pytest.raises(ValueError, match=r"hf-bert: backbone does not match .*config.json: norm='pre' \(checkpoint: "
                                         r"'post'\); layer_norm_eps=1e-05 \(checkpoint: 1e-12\)"):
        reg.build("weights", "hf-bert", path=str(bert_dir)).load_into(parts)
    assert all(torch.equal(before[k], v) for k, v in parts.backbone.state_dict().items())


def test_a_bare_bertmodel_checkpoint_fills_the_encoder_only(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=EMBED, num_hidden_layers=1, num_attention_heads=HEADS,
                                     intermediate_size=64, max_position_embeddings=CTX)
    transformers.BertModel(config).save_pretrained(tmp_path / "bare")
    with pytest.raises(ValueError, match=r"has no MLM head \(cls.predictions.\*\): a BertModel checkpoint; load it "
                                         r"with fills = 'encoder'"):
        ours(tmp_path / "bare")
    weights = get_registry().build("weights", "hf-bert", path=str(tmp_path / "bare"), fills="encoder")
    assert isinstance(weights, HFBertWeights) and weights.fills == ("encoder",)


def test_the_bert_card_pulls_its_repo_and_loads(bert_dir: Path, hub: Any, tmp_path: Path) -> None:
    """``bert-base-uncased`` from a hub on loopback holding the small checkpoint in the real repo's layout, with a
    WordPiece vocabulary trained on Python's own documentation."""
    from pydoc_data.topics import topics

    tokenizers = pytest.importorskip("tokenizers")
    wordpiece = tokenizers.BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator((topics[k] for k in sorted(topics)[:30]), vocab_size=VOCAB, limit_alphabet=60)
    wordpiece.save(str(tmp_path / "tokenizer.json"))
    wordpiece.save_model(str(tmp_path))  # vocab.txt
    files = {n: (bert_dir / n).read_bytes() for n in ("config.json", "model.safetensors")}
    files |= {n: (tmp_path / n).read_bytes() for n in ("vocab.txt", "tokenizer.json")}
    commit = hub.add_repo("google-bert/bert-base-uncased", files)
    weights = get_registry().build("weights", "bert-base-uncased")
    assert isinstance(weights, HFBertWeights) and weights.pulled is not None and weights.pulled.commit == commit
    assert weights.meta["tokenizer_files"] == ["vocab.txt", "tokenizer.json"]
    assert [p.name for p in weights.files()] == ["config.json", "model.safetensors", "vocab.txt", "tokenizer.json"]
    # the tokenizer card reads the same repo's vocab.txt and gives transformers' ids on real text
    tok = get_registry().build("tokenizer", "bert-base-uncased")
    assert tok.pulled is not None and tok.pulled.commit == commit
    theirs = transformers.BertTokenizerFast.from_pretrained(weights.path)
    text = topics["assert"][:400] + " Ünïcödé and CJK 漢字"
    assert tok.encode(text) == theirs(text)["input_ids"]
    parts, obj = ours(weights.path)
    reference = transformers.BertForPreTraining.from_pretrained(weights.path).eval()
    ids, types, _ = batch()
    with torch.no_grad():
        got = obj.logits(parts, ids, token_types=types)
        assert (got - reference(input_ids=ids, token_type_ids=types).prediction_logits).abs().max().item() <= 1e-5


def test_the_bert_card_counts_what_its_checkpoint_holds() -> None:
    card = get_registry().get("weights", "bert-base-uncased").card
    assert card is not None and card.repo == "google-bert/bert-base-uncased"
    with torch.device("meta"):
        model = transformers.BertForPreTraining(transformers.BertConfig())  # bert-base-uncased's own config
    assert model.num_parameters() == card.params
    pre = card.preprocessing
    assert (pre["vocab_size"], pre["embed_dim"], pre["depth"], pre["heads"], pre["layer_norm_eps"]) == (
        model.config.vocab_size, model.config.hidden_size, model.config.num_hidden_layers,
        model.config.num_attention_heads, model.config.layer_norm_eps)


@pytest.mark.slow
def test_a_trained_bert_run_exports_to_a_folder_transformers_opens(tmp_path: Path) -> None:
    """A small post-LN BERT trained a few masked-LM steps on Python's own docs, with a WordPiece trained on them,
    exported with `export --to hf-bert`: BertForMaskedLM and AutoTokenizer open it and give our ids and logits."""
    import subprocess
    import sys
    from pydoc_data.topics import topics

    from registry_core import Pipeline, compose

    pipe = compose({
        "data": {"use": "text-shards", "seq_len": 32, "val_fraction": 0.1, "quality_filter": False,
                 "append_eos": False},
        "tokenizer": {"use": "wordpiece", "vocab_size": 600},
        "positional": {"use": "learned"},
        "backbone": {"use": "bert", "embed_dim": 32, "depth": 2, "heads": 4, "max_positions": 64, "norm": "post",
                     "type_vocab_size": 2, "layer_norm_eps": 1e-12, "dropout": 0.0},
        "objective": {"use": "masked-lm", "head": "bert"},
        "train": {"steps": 3, "batch_size": 4, "lr": 1e-3, "warmup_steps": 0, "log_every": 1, "device": "cpu"},
    })
    pipe.run(tmp_path / "run")
    out = subprocess.run([sys.executable, "-m", "registry_core", "export", "run", "--to", "hf-bert", "exported"],
                         capture_output=True, text=True, cwd=tmp_path, check=False, timeout=300)
    assert out.returncode == 0, out.stderr
    model = transformers.BertForMaskedLM.from_pretrained(tmp_path / "exported").eval()
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path / "exported")
    run = Pipeline.load(tmp_path / "run")
    text = topics["assert"][:300]
    ids = run.tokenizer.encode(text)[:40]
    assert ids == theirs(text)["input_ids"][:40]
    batch = torch.tensor([ids])
    with torch.no_grad():
        ours = run.objective.logits(run.parts, batch)
        assert (model(input_ids=batch).logits - ours[..., :model.config.vocab_size]).abs().max().item() <= 1e-4
    refused = subprocess.run([sys.executable, "-m", "registry_core", "export", "run", "--to", "hf-gpt2", "other"],
                             capture_output=True, text=True, cwd=tmp_path, check=False, timeout=300)
    assert refused.returncode == 1 and "not a causal decoder" in refused.stderr
