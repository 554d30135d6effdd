"""The per-document work of a shard build, batched so it can run in worker processes.

``process_batch`` cleans, filters, signs (for dedup) and tokenizes a list of documents. It is a pure
function of its input and the settings installed once per process, so results are the same with any
number of workers; the caller keeps input order and makes the dedup decision.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import numpy as np

from registry_llm.data.content_filters import ContentFilters, content_reason
from registry_llm.data.dedup import signature
from registry_llm.data.gopher_filters import QualityRules, quality_reason
from registry_llm.data.text_cleaning import clean_text

__all__ = ["BatchSettings", "DocResult", "process_batch", "run_batches"]


@dataclass(frozen=True)
class BatchSettings:
    """What every worker needs: the rules, the dedup signature settings and the tokenizer (or None)."""

    rules: QualityRules | None
    dedup: str
    ngram: int
    num_perm: int
    seed: int
    tokenizer: Any  # BPETokenizer or None (signatures only, e.g. to train the tokenizer)
    dtype: str
    append_eos: bool
    #: Language and blocklist filters (None: none set).
    filters: ContentFilters | None = None


@dataclass
class DocResult:
    """One document after processing: rejected with a reason, or kept with its signature and ids."""

    origin: str
    reason: str | None
    raw_bytes: int
    signature: Any = None
    ids: np.ndarray | None = None
    text: str | None = None
    #: The detected language (ISO 639-1) and its confidence, when a language filter ran.
    language: str | None = None
    language_score: float | None = None


_SETTINGS: BatchSettings | None = None


def _install(settings: BatchSettings) -> None:
    global _SETTINGS
    _SETTINGS = settings


def _worker_init(settings: BatchSettings) -> None:
    # Workers already use every core between them; the tokenizer's own thread pool would oversubscribe.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _install(settings)


def process_batch(docs: list[tuple[str, str]], keep_text: bool = False) -> list[DocResult]:
    """Clean -> filter -> signature -> tokenize each ``(origin, text)``; order is kept."""
    s = _SETTINGS
    assert s is not None, "process_batch needs settings installed (run_batches does this)"
    out: list[DocResult] = []
    kept: list[str] = []
    for origin, raw in docs:
        text = clean_text(raw)
        size = len(raw.encode("utf-8", "surrogatepass"))
        reason = "empty" if not text else (quality_reason(text, s.rules) if s.rules is not None else None)
        res = DocResult(origin, reason, size)
        if reason is None and s.filters is not None:
            res.reason, res.language, res.language_score = content_reason(text, s.filters)
            reason = res.reason
        if reason is None:
            res.signature = signature(text, s.dedup, ngram=s.ngram, num_perm=s.num_perm, seed=s.seed)
            kept.append(text)
        if reason is None or keep_text:
            res.text = text
        out.append(res)
    if s.tokenizer is not None and kept:
        # Only the plain tokenizer interface (encode_batch, eos_id), so any discrete tokenizer plugin fits.
        ids = s.tokenizer.encode_batch(kept)
        if s.append_eos:
            ids = [[*doc, s.tokenizer.eos_id] for doc in ids]
        it = iter(ids)
        for res in out:
            if res.reason is None:
                res.ids = np.asarray(next(it), dtype=s.dtype)
                if not keep_text:
                    res.text = None
    return out


def _batches(docs: Iterable[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    batch: list[tuple[str, str]] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_batches(
    docs: Iterable[tuple[str, str]],
    settings: BatchSettings,
    *,
    batch_size: int,
    workers: int,
    keep_text: bool = False,
) -> Iterator[list[DocResult]]:
    """``process_batch`` over ``docs`` in input order, on ``workers`` processes with bounded memory.

    At most ``2 * workers`` batches are in flight, so reading never runs far ahead of writing.
    """
    if workers <= 1:
        _install(settings)
        for batch in _batches(docs, batch_size):
            yield process_batch(batch, keep_text)
        return
    # spawn: a fork would inherit the tokenizer's running thread pool (and its locks) mid-state.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init,
                             initargs=(settings,)) as pool:
        pending: list[Future[list[DocResult]]] = []
        for batch in _batches(docs, batch_size):
            pending.append(pool.submit(process_batch, batch, keep_text))
            if len(pending) >= 2 * workers:
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()
