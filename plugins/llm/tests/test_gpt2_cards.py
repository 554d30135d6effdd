"""The ``gpt2`` ... ``gpt2-xl`` cards: GPT-2 pulled from a hub (a real HTTP hub on loopback, the real
``huggingface_hub`` client) in the layout of ``openai-community/gpt2``, loaded as ``hf-gpt2`` weights.

The repo holds a small random GPT2LMHeadModel written by transformers (norms and biases moved off their init)
and a byte-level BPE trained here on Python's own documentation (``pydoc_data.topics``), in both of the forms the
real repo ships (``tokenizer.json``; ``vocab.json`` + ``merges.txt``).
"""

from __future__ import annotations

from pathlib import Path
from pydoc_data.topics import topics
from typing import Any

import pytest
import torch
from torch import nn

from registry_core import get_registry
from registry_core.interfaces import ModelParts
from registry_core.testing import LoopbackHub

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
from registry_llm.generation import generate  # noqa: E402
from registry_llm.weights.hf_gpt2 import HFGPT2Weights, gpt_options  # noqa: E402

REPO = "openai-community/gpt2"
TEXT = topics["assert"][:600]

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def gpt2_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A GPT-2 repo's files: config.json, model.safetensors, tokenizer.json, vocab.json, merges.txt."""
    folder = tmp_path_factory.mktemp("gpt2")
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator((topics[k] for k in sorted(topics)[:40]), vocab_size=400, min_frequency=2,
                            special_tokens=["<|endoftext|>"])
    bpe.save(str(folder / "tokenizer.json"))
    bpe.save_model(str(folder))  # vocab.json + merges.txt
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, vocab_size=bpe.get_vocab_size(),
                                     bos_token_id=0, eos_token_id=0, initializer_range=0.2)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.normal_(1.0, 0.1)
                module.bias.normal_(0.0, 0.05)
    model.save_pretrained(folder)
    return {name: (folder / name).read_bytes()
            for name in ("config.json", "model.safetensors", "tokenizer.json", "vocab.json", "merges.txt")}


@pytest.fixture
def served(hub: LoopbackHub, gpt2_files: dict[str, bytes]) -> str:
    return hub.add_repo(REPO, gpt2_files)


def _reference(weights: HFGPT2Weights) -> Any:
    return transformers.GPT2LMHeadModel.from_pretrained(weights.path).eval()


def _ours(weights: HFGPT2Weights) -> tuple[ModelParts, Any]:
    reg = get_registry()
    options = gpt_options(weights.path)
    parts = ModelParts(nn.Embedding(weights.meta["vocab_size"], options["embed_dim"]),
                       reg.build("positional_encoder", "learned", embed_dim=options["embed_dim"],
                                 max_positions=options["max_positions"]),
                       reg.build("backbone", "gpt", **options))
    objective = reg.build("objective", "next-token", vocab_size=weights.meta["vocab_size"])
    objective.bind(parts)
    weights.load_into(parts)
    parts.backbone.eval()
    return parts, objective


def test_the_gpt2_card_pulls_and_gives_transformers_logits(served: str) -> None:
    weights = get_registry().build("weights", "gpt2")
    assert isinstance(weights, HFGPT2Weights) and weights.pulled is not None and weights.pulled.commit == served
    assert [f.name for f in weights.pulled.files] == ["config.json", "model.safetensors", "tokenizer.json",
                                                      "vocab.json", "merges.txt"]
    reference = _reference(weights)
    tok = get_registry().build("tokenizer", "bpe", path=str(weights.path / "tokenizer.json"))
    ids = tok.encode(TEXT)[:60]
    theirs = transformers.PreTrainedTokenizerFast(tokenizer_file=str(weights.path / "tokenizer.json"))
    assert ids == theirs(TEXT)["input_ids"][:60]  # our tokenizer reads the pulled file as transformers does
    parts, objective = _ours(weights)
    batch = torch.tensor([ids])
    with torch.no_grad():
        assert (objective.logits(parts, batch) - reference(batch).logits).abs().max().item() <= 1e-5
    ours = generate(parts, objective, ids[:8], max_new_tokens=10, temperature=0.0)
    ref = reference.generate(torch.tensor([ids[:8]]), max_new_tokens=10, do_sample=False, pad_token_id=0,
                             eos_token_id=None)[0, 8:].tolist()
    assert ours == ref


def test_every_gpt2_card_names_its_repo_and_size() -> None:
    reg = get_registry()
    cards = {s.name: s.card for s in reg.list(kind="weights") if s.card is not None and s.name.startswith("gpt2")}
    assert {n: c.repo for n, c in cards.items()} == {n: f"openai-community/{n}" for n in
                                                     ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")}
    # the parameter counts of transformers' GPT2LMHeadModel for each size (tied head counted once)
    for name, card in cards.items():
        pre = card.preprocessing
        config = transformers.GPT2Config(n_embd=pre["embed_dim"], n_layer=pre["depth"], n_head=pre["heads"])
        with torch.device("meta"):
            assert transformers.GPT2LMHeadModel(config).num_parameters() == card.params, name


@pytest.mark.slow
def test_finetune_from_the_gpt2_cards_then_export_opens_in_transformers(served: str, tmp_path: Path) -> None:
    """`pull gpt2` (weights and tokenizer, one repo), then offline: a few next-token steps on Python's own docs
    from the pulled GPT-2 and its tokenizer, the run exported as GPT-2, transformers' logits equal ours."""
    import json
    import os
    import subprocess
    import sys

    from registry_core import Pipeline, compose

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "registry_core", *args], capture_output=True, text=True,
                              cwd=tmp_path, check=False, timeout=300)

    pulled = cli("pull", "gpt2", "--json")
    assert pulled.returncode == 0, pulled.stderr
    assert sorted(r["kind"] for r in json.loads(pulled.stdout)) == ["tokenizer", "weights"]
    os.environ["HF_HUB_OFFLINE"] = "1"  # the hub fixture restores the environment afterwards
    try:
        pipe = compose({
            "data": {"use": "text-shards", "seq_len": 32, "val_fraction": 0.1, "quality_filter": False},
            "tokenizer": {"use": "gpt2"},
            "positional": {"use": "learned"},
            "backbone": {"use": "gpt", "embed_dim": 32, "depth": 2, "heads": 4, "max_positions": 64,
                         "activation": "gelu-tanh", "dropout": 0.0},
            "objective": {"use": "next-token"},
            "weights": {"use": "gpt2"},
            "train": {"steps": 3, "batch_size": 4, "lr": 1e-3, "warmup_steps": 0, "log_every": 1, "device": "cpu"},
        })
        assert pipe.slots["tokenizer"].config.vocab_size == 400  # read from the pulled tokenizer.json
        result = pipe.run(tmp_path / "run")
        assert result.step == 3
    finally:
        del os.environ["HF_HUB_OFFLINE"]
    lock = json.loads((tmp_path / "run" / "pipeline.lock.json").read_text())
    assert {lock["hub"][s]["commit"] for s in ("tokenizer", "weights")} == {served}
    saved = (tmp_path / "run" / "pipeline.toml").read_text()
    assert '[tokenizer]\nuse = "llm:bpe"' in saved and "hub =" not in saved.split("[positional]")[0]
    exported = cli("export", "run", "--to", "hf-gpt2", "exported")
    assert exported.returncode == 0, exported.stderr
    model = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "exported").eval()
    run = Pipeline.load(tmp_path / "run")
    ids = torch.tensor([run.tokenizer.encode(TEXT)[:40]])
    with torch.no_grad():
        ours = run.objective.logits(run.parts, ids)[..., :400]
        assert (model(ids).logits - ours).abs().max().item() <= 1e-4


def test_serve_a_card_pulls_it_and_answers_as_the_library_does(served: str) -> None:
    """`serve gpt2`: the card pulled from the (loopback) hub, served; a greedy completion through the openai client
    equals our own generation from the same pulled weights."""
    import signal
    import subprocess
    import sys

    openai = pytest.importorskip("openai")
    pytest.importorskip("fastapi")
    weights = get_registry().build("weights", "gpt2")
    parts, objective = _ours(weights)
    tok = get_registry().build("tokenizer", "bpe", path=str(weights.path / "tokenizer.json"))
    want = tok.decode(generate(parts, objective, tok.encode("The assert statement"), max_new_tokens=12,
                               temperature=0.0, stop_tokens=[0]), skip_special=True)
    proc = subprocess.Popen([sys.executable, "-m", "registry_core", "serve", "gpt2", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving gpt2 on http://127.0.0.1:"), line + (proc.stderr.read() if proc.stderr else "")
        client = openai.OpenAI(base_url=line.split()[3], api_key="unused", max_retries=0, timeout=60)
        got = client.completions.create(model="gpt2", prompt="The assert statement", max_tokens=12, temperature=0)
        assert got.choices[0].text == want
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        proc.communicate()
