"""registry-llm's figures for ``python -m registry_core report``: 1-D positions and causal attention of a text run.

Both come from the trained model loaded from the run folder (``Pipeline.load``): the positional encoder's
own table (additive: the vectors it adds; rotary: ``cos`` of each frequency's angle; ALiBi: each head's
bias), and the attention weights of the backbone's last layer on a real prompt, recomputed from its
queries and keys with the positions the model used (``registry_core.nn.record_attention``).
Called from ``plugin.py``'s hooks; torch is imported inside the drawing functions, so reading key figures
(for the summary table) imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from registry_core.report import ReportFigure, ReportRun
from registry_core.report.figures import Heatmap, RecordedAttention, attention_figure, heatmaps

__all__ = ["PROMPT", "is_text_run", "key_figures", "run_figures"]

#: The prompt whose attention is drawn: a sentence of Python's documentation (the gpt-tiny corpus).
PROMPT: Final = "The with statement is used to wrap the execution of a block with methods defined by a context manager."
#: At most this many prompt tokens are drawn, so each row and column keeps a readable label.
MAX_TOKENS: Final = 32
#: Positions shown in the table figures.
MAX_POSITIONS: Final = 128


def key_figures(run: ReportRun) -> dict[str, float]:
    """Perplexity and bits per byte of ``perplexity``, and the ``unigram-baseline`` perplexity, when they ran."""
    out: dict[str, float] = {}
    ppl, unigram = run.evaluator("llm:perplexity"), run.evaluator("llm:unigram-baseline")
    for label, source, key in (("perplexity", ppl, "perplexity"), ("bits/byte", ppl, "bits_per_byte"),
                               ("unigram perplexity", unigram, "perplexity")):
        if isinstance(source.get(key), int | float):
            out[label] = float(source[key])
    return out


def _positions_figure(run: ReportRun, positional: Any, out_dir: Path, length: int) -> ReportFigure | None:
    """The 1-D table of the run's positional encoder, by mode; None for an encoder of an unknown mode."""
    import torch

    from registry_core.nn import rotary_angles

    name = str(run.slot("positional").get("use", type(positional).__name__))
    mode = getattr(positional, "mode", None)
    positions = f"positions 0..{length - 1}"
    if mode == "additive":
        dim = int(getattr(positional, "embed_dim", None) or 0)
        with torch.no_grad():
            table = positional(torch.zeros(1, length, dim))[0]  # what it adds at each position: (T, D)
        panels = [Heatmap(f"{name}: vector added per position", table.numpy(), "dimension", "position")]
        caption = f"The (position x dimension) table {name} adds to the token embeddings, {positions}."
        cmap = "RdBu_r"
    elif mode == "rotary":
        head_dim = int(positional.head_dim)
        angles = rotary_angles(torch.arange(length), head_dim, base=float(positional.base))[:, : head_dim // 2]
        panels = [Heatmap(f"{name}: cos(position x theta_i)", angles.cos().numpy(), "frequency pair i", "position")]
        caption = (f"RoPE angle cos table of {name} (head_dim {head_dim}, base {positional.base:g}): each pair of "
                   f"query/key dimensions turns by position x theta_i, {positions}; fast pairs left, slow right.")
        cmap = "RdBu_r"
    elif mode == "attention_bias":
        with torch.no_grad():
            bias = positional.bias(torch.arange(length), torch.arange(length))  # (H, T, T)
        panels = [Heatmap(f"head {h}", bias[h].numpy(), "key position", "query position")
                  for h in range(min(4, bias.shape[0]))]
        caption = f"The attention bias {name} adds to the scores (first heads), {positions}."
        cmap = "viridis"
    else:
        return None
    image = heatmaps(out_dir / f"{run.label}-positions-1d.png", panels, title=f"{run.name}: 1-D positions",
                     cmap=cmap)
    return ReportFigure("Positional encodings", f"{run.label}: 1-D positional encoding ({name})", caption, image)


def _token_label(tokenizer: Any, index: int) -> str:
    text = tokenizer.decode([index])
    return text.replace(" ", "\u00b7").replace("\n", "\\n") or "\u2205"


def _attention_figure(run: ReportRun, pipeline: Any, out_dir: Path) -> ReportFigure | None:
    """Each head of the last attention layer on :data:`PROMPT`; None without a tokenizer or attention layers."""
    import torch

    parts, tokenizer = pipeline.parts, pipeline.tokenizer
    hidden = getattr(pipeline.objective, "hidden", None)
    if not callable(getattr(tokenizer, "encode", None)) or not callable(hidden):
        return None
    ids = tokenizer.encode(PROMPT)[:MAX_TOKENS]
    batch = torch.tensor([ids], dtype=torch.long)
    labels = [_token_label(tokenizer, i) for i in ids]

    def panels(recorded: RecordedAttention) -> list[list[Heatmap]]:
        # token labels on the first head only: the others share its axes (and each label costs drawing time)
        heads = [Heatmap(f"head {h}", recorded.weights[h], "key token", "query token", labels, labels, ticks=h == 0)
                 for h in range(recorded.weights.shape[0])]
        return [heads[i:i + 4] for i in range(0, len(heads), 4)]

    def caption(recorded: RecordedAttention) -> str:
        what = ("nothing above the diagonal: each token sees only itself and earlier ones" if recorded.causal
                else "every pair")
        return f"on {len(ids)} tokens of a Python-docs sentence, per head (rows: queries, columns: keys; {what})."

    return attention_figure(run, out_dir, parts, lambda: hidden(parts, batch), panels, caption,
                            title=f"{run.name}: last layer on a prompt", vmin=0.0, vmax=1.0, panel_size=3.3)


def run_figures(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """The positional table and the attention figure of a run whose backbone comes from registry-llm."""
    from registry_core import Pipeline

    pipeline = Pipeline.load(run.path)
    figures = []
    seq_len = run.slot("data").get("seq_len")
    limit = int(getattr(pipeline.parts.positional, "max_positions", None) or MAX_POSITIONS)
    length = min(MAX_POSITIONS, limit, int(seq_len) if isinstance(seq_len, int) else MAX_POSITIONS)
    if pipeline.parts.positional is not None:
        fig = _positions_figure(run, pipeline.parts.positional, out_dir, length)
        if fig is not None:
            figures.append(fig)
    attention = _attention_figure(run, pipeline, out_dir)
    if attention is not None:
        figures.append(attention)
    return figures


def is_text_run(run: ReportRun) -> bool:
    """Whether the run's backbone (the model this module draws) comes from registry-llm."""
    return run.uses("registry_llm", "backbone")
