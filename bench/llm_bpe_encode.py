"""Benchmark 1 (issue 4): `bpe` encode_batch throughput through the registry vs raw HF `tokenizers`.

Same tokenizer.json, same texts (paragraphs of the embedded pydoc corpus, repeated), runs interleaved so
machine noise hits both alike; prints the median MB/s of each and the ratio. Goal: registry / raw >= 0.95
(raw = `Tokenizer.encode_batch_fast` plus taking `.ids`, which is what the registry returns).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from pydoc_data.topics import topics

from tokenizers import Tokenizer

from registry_core import get_registry


def texts(copies: int) -> list[str]:
    paras = [p for k in sorted(topics) for p in topics[k].split("\n\n") if p.strip()]
    return paras * copies


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=4, help="corpus repeats (about 0.46 MB each)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=0, help="bpe threads option (0: library pool)")
    args = parser.parse_args()

    registry = get_registry()
    data = texts(args.copies)
    mb = sum(len(t.encode("utf-8")) for t in data) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        trained = registry.build("tokenizer", "bpe", vocab_size=args.vocab_size)
        trained.train(topics[k] for k in sorted(topics))
        path = trained.save(Path(tmp) / "tokenizer.json")
        ours = registry.build("tokenizer", "bpe", path=str(path), threads=args.threads)
        raw = Tokenizer.from_file(str(path))
        raw.encode_special_tokens = True  # the registry's setting (identical ids on this text either way)

        runs: dict[str, Callable[[], object]] = {
            "registry bpe.encode_batch": lambda: ours.encode_batch(data),
            "raw encode_batch_fast + .ids": lambda: [e.ids for e in raw.encode_batch_fast(data)],
            "raw encode_batch + .ids": lambda: [e.ids for e in raw.encode_batch(data)],
        }
        assert ours.encode_batch(data[:200]) == [e.ids for e in raw.encode_batch_fast(data[:200])]
        for fn in runs.values():  # warm up
            fn()
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(args.repeats):
            for name, fn in runs.items():
                times[name].append(timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"text: {len(data)} paragraphs, {mb:.2f} MB; vocab {args.vocab_size}; threads={args.threads}")
    for name, sec in med.items():
        print(f"{name:32} median {mb / sec:8.2f} MB/s  ({sec * 1000:.0f} ms, n={args.repeats})")
    base = med["raw encode_batch_fast + .ids"]
    print(f"ratio registry / raw encode_batch_fast+ids: {base / med['registry bpe.encode_batch']:.3f}  (goal >= 0.95)")
    slow = med["raw encode_batch + .ids"]
    print(f"ratio registry / raw encode_batch+ids:      {slow / med['registry bpe.encode_batch']:.3f}")


if __name__ == "__main__":
    main()
