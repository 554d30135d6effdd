"""``instruction-eval``: how an instruction-tuned model answers held-out pairs.

``response_loss`` is the mean cross-entropy over the held-out responses' tokens (what training lowers); each
prompt is then rendered with the data's chat template, answered greedily up to eos, and compared with the
reference: ``exact_match`` (after lower-casing and collapsing whitespace) and ``token_f1`` (SQuAD's: the
harmonic mean of precision and recall over the bag of words). The answers are kept (``answers``: prompt,
reference, answer), so the report shows them without loading the model again.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import torch

from registry_llm.evaluators.specs import InstructionEvalConfig

__all__ = ["InstructionEval", "build", "token_f1"]


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def token_f1(answer: str, reference: str) -> float:
    """F1 of the words two texts share (as bags); 1.0 when both are empty."""
    a, r = _words(answer), _words(reference)
    if not a or not r:
        return float(a == r)
    common = sum((Counter(a) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(r)
    return 2 * precision * recall / (precision + recall)


class InstructionEval:
    def __init__(self, config: InstructionEvalConfig) -> None:
        self.config = config

    @torch.no_grad()
    def evaluate(self, pipeline: Any, split: str = "val") -> dict[str, Any]:
        from registry_llm.generation import generate

        data, objective, parts, model = pipeline.data, pipeline.objective, pipeline.parts, pipeline.model
        windows = data.dataset(split)
        if len(windows) == 0:
            raise ValueError(f"instruction-eval: the {split!r} split has no pairs")
        was = model.training
        model.eval()
        device = next(model.parameters()).device
        try:
            total, tokens = 0.0, 0.0
            for i in range(len(windows)):
                batch = {k: v[None].to(device) for k, v in windows[i].items()}
                loss, metrics = objective(parts, batch)
                total += float(loss) * float(metrics["tokens"])
                tokens += float(metrics["tokens"])
            pairs = data.pairs(split)[: self.config.max_pairs]
            eos = getattr(pipeline.tokenizer, "eos_id", None)
            exact, f1 = 0.0, 0.0
            answers = []
            for prompt, reference in pairs:
                ids = pipeline.tokenizer.encode(data.template.prompt(prompt))
                out = generate(parts, objective, ids, max_new_tokens=self.config.max_new_tokens, temperature=0.0,
                               stop_tokens=[] if eos is None else [int(eos)])
                answer = pipeline.tokenizer.decode(out, skip_special=True)
                answers.append({"prompt": prompt, "reference": reference, "answer": answer})
                exact += float(" ".join(_words(answer)) == " ".join(_words(reference)))
                f1 += token_f1(answer, reference)
        finally:
            model.train(was)
        return {"response_loss": total / max(tokens, 1.0), "response_tokens": tokens,
                "exact_match": exact / len(pairs), "token_f1": f1 / len(pairs), "pairs": float(len(pairs)),
                "answers": answers}


def build(config: InstructionEvalConfig) -> InstructionEval:
    return InstructionEval(config)
