"""Instruction tuning on real pairs (tests/data/pydoc_pairs: Python's documentation topics): only response tokens
are targets, packed pairs train exactly as the pairs one by one (positions and attention stay inside each pair),
micro-batches add up to the one big batch, a short run lowers the held-out response loss, and bad templates or
over-long pairs are one clear error."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from registry_core import compose, get_registry

ROOT = Path(__file__).resolve().parents[3]
PAIRS = ROOT / "tests" / "data" / "pydoc_pairs" / "pairs.jsonl"


def sft(positional: str = "rope", **data: object) -> dict[str, object]:
    return {
        "data": {"use": "instruction-pairs", "path": str(PAIRS), "seq_len": 192, "val_fraction": 0.1, **data},
        "tokenizer": {"use": "bpe", "vocab_size": 512},
        "positional": {"use": positional},
        "backbone": {"use": "gpt", "embed_dim": 32, "depth": 2, "heads": 2, "max_positions": 192, "dropout": 0.0},
        "objective": {"use": "instruct"},
        "evaluators": [{"use": "instruction-eval", "max_pairs": 3, "max_new_tokens": 24}],
        "train": {"steps": 40, "batch_size": 4, "lr": 3e-3, "warmup_steps": 2, "log_every": 20, "eval_every": 20,
                  "device": "cpu", "seed": 0},
    }


def test_only_response_tokens_are_targets() -> None:
    pipeline = compose(sft(pack=False)).build()
    data = pipeline.data
    windows = data.dataset("train")
    for i, (prompt, response) in enumerate(data.pairs("train")[:10]):
        p_ids, r_ids = data.encode_pair(prompt, response)
        targets = windows[i]["targets"]
        counted = targets[targets != -100].tolist()
        assert counted == r_ids  # the response, eos included, each predicted from the token before it
        assert windows[i]["input_ids"][: len(p_ids)].tolist() == p_ids


@pytest.mark.parametrize("positional", ["rope", "learned"])
def test_packed_pairs_train_as_the_pairs_one_by_one(positional: str) -> None:
    packed = compose(sft(positional)).build()
    alone = compose(sft(positional, pack=False)).build()
    alone.model.load_state_dict(packed.model.state_dict())
    packed.model.eval()
    alone.model.eval()
    a, b = packed.data.dataset("train"), alone.data.dataset("train")
    assert len(a) < len(b)  # several pairs per window

    def total(windows: object, pipeline: object) -> tuple[float, float]:
        loss_sum, count = 0.0, 0.0
        for i in range(len(windows)):  # type: ignore[arg-type]
            batch = {k: v[None] for k, v in windows[i].items()}  # type: ignore[index]
            with torch.no_grad():
                loss, metrics = pipeline.objective(pipeline.parts, batch)  # type: ignore[attr-defined]
            loss_sum += float(loss) * float(metrics["tokens"])
            count += float(metrics["tokens"])
        return loss_sum, count

    (sa, ca), (sb, cb) = total(a, packed), total(b, alone)
    assert ca == cb and abs(sa / ca - sb / cb) < 1e-5, (sa / ca, sb / cb)


def test_micro_batches_add_up_to_the_big_batch(tmp_path: Path) -> None:
    def losses(micro: int | None, out: Path) -> list[float]:
        cfg = sft()
        cfg["train"] = {**cfg["train"], "steps": 3, "batch_size": 8, "micro_batch_size": micro, "eval_every": 0,
                        "log_every": 1}
        cfg.pop("evaluators")
        compose(cfg).fit(out)
        return [json.loads(x)["loss"] for x in (out / "metrics.jsonl").read_text().splitlines()]

    big, small = losses(None, tmp_path / "big"), losses(2, tmp_path / "small")
    assert max(abs(x - y) for x, y in zip(big, small, strict=True)) < 1e-5, (big, small)


def test_a_short_run_lowers_the_held_out_response_loss(tmp_path: Path) -> None:
    pipeline = compose(sft())
    before = None
    pipeline.build()
    before = pipeline.evaluate("val")["llm:instruction-eval"]
    result = pipeline.run(tmp_path / "run")
    after = result.evaluators["llm:instruction-eval"]
    assert after["response_loss"] < before["response_loss"] - 0.5, (before, after)
    assert 0.0 <= after["token_f1"] <= 1.0 and after["pairs"] == 3.0
    from registry_core.testing import run_cli

    chat = run_cli("generate", str(tmp_path / "run"), "--prompt", "What does the Python documentation say about if?",
                   "--temperature", "0", "--max-tokens", "8")
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.startswith("### Question:\nWhat does the Python documentation say about if?\n### Answer:\n")
    raw = run_cli("generate", str(tmp_path / "run"), "--prompt", "Assert", "--raw", "--temperature", "0",
                  "--max-tokens", "4")
    assert raw.returncode == 0 and raw.stdout.startswith("Assert"), raw.stderr


@pytest.mark.parametrize(("options", "message"), [
    ({"template": "{% for m in messages %}{{ m.role }}{% endfor %}"}, "the template does not render the assistant's"),
    ({"template": "{% for m in messages %}"}, "the template is not valid Jinja"),
    ({"seq_len": 16}, "more than seq_len + 1 = 17; raise seq_len or set truncate = true"),
])
def test_bad_templates_and_long_pairs_are_named(options: dict[str, object], message: str) -> None:
    with pytest.raises(Exception, match=re.escape(message)):
        compose(sft(**options)).build()


def test_truncate_cuts_long_pairs() -> None:
    pipeline = compose(sft(seq_len=16, truncate=True)).build()
    assert pipeline.data.dataset("train")[0]["input_ids"].shape == (16,)
    assert get_registry().get("objective", "instruct").id == "llm:instruct"
