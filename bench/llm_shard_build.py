"""Benchmark 5 (issue 4): text-shards build speed in MB/s of raw text, with dedup off, exact and MinHash.

The input is a jsonl corpus made from the embedded pydoc topics: ``--copies`` rounds of every topic,
each round lightly edited (so exact dedup keeps them and MinHash catches them as near duplicates),
plus verbatim repeats. Every run rebuilds from scratch (fresh ``out``) with the Gopher filters on;
prints MB/s per setting and the ratios to ``dedup="none"``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from pydoc_data.topics import topics

from registry_core import get_registry


def write_corpus(path: Path, copies: int) -> int:
    """Edited and verbatim copies of every topic as jsonl; returns the raw text size in bytes."""
    size = 0
    with open(path, "w", encoding="utf-8") as fh:
        for c in range(copies):
            for key in sorted(topics):
                text = topics[key]
                if c % 3 == 1:  # a near duplicate: an edited header and a few words changed
                    text = f"Copy {c} of the {key} topic.\n" + text.replace(" the ", " a ", 3)
                fh.write(json.dumps({"text": text}) + "\n")
                size += len(text.encode("utf-8"))
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=10, help="rounds of the 0.46 MB corpus")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--vocab-size", type=int, default=8192)
    args = parser.parse_args()
    registry = get_registry()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        size = write_corpus(folder / "corpus.jsonl", args.copies)
        tok = registry.build("tokenizer", "bpe", vocab_size=args.vocab_size).train(topics[k] for k in sorted(topics))
        results = {}
        for dedup in ("none", "exact", "minhash"):
            src = registry.build("data_source", "text-shards", paths=[str(folder / "corpus.jsonl")],
                                 out=str(folder / f"out-{dedup}"), dedup=dedup, workers=args.workers)
            src.attach_tokenizer(tok)
            start = time.perf_counter()
            src.prepare()
            sec = time.perf_counter() - start
            results[dedup] = (size / 1e6 / sec, src.stats)
    print(f"input: {size / 1e6:.2f} MB raw text ({args.copies} rounds of {len(topics)} topics), "
          f"workers={args.workers}, vocab {args.vocab_size}, Gopher filters on")
    for dedup, (mbps, stats) in results.items():
        dups = stats.get("rejected.exact_duplicate", 0) + stats.get("rejected.near_duplicate", 0)
        print(f"dedup={dedup:8} {mbps:7.2f} MB/s   kept {stats['documents_kept']:5d} docs, "
              f"{dups:5d} duplicates, {stats['tokens']:9d} tokens")
    base = results["none"][0]
    print(f"ratio exact / none:   {results['exact'][0] / base:.2f}")
    print(f"ratio minhash / none: {results['minhash'][0] / base:.2f}")


if __name__ == "__main__":
    main()
