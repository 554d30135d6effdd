"""Benchmark 2 (issue 4): text-shards TokenLoader vs numpy-memmap random-window `get_batch` baselines.

Writes one token corpus (random uint16 ids, default 64M tokens = 128 MB) both as text-shards shards
(4 files + manifest, through the real ShardWriter) and as one flat .bin, then runs 10k batches of each
loader in its own fresh process so each peak RSS is its own:

- ``registry``: ``TokenLoader.get_batch`` (pread per window; no map kept);
- ``memmap``: the usual ``np.memmap`` opened once, random windows sliced from it;
- ``memmap-reopen``: nanoGPT's variant, a new ``np.memmap`` every batch (its fix for the leak).

Prints batches/s, peak RSS and RSS growth over the run, and ratios. Goal: registry / memmap >= 1.0.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write_corpus(folder: Path, tokens: int, shards: int) -> None:
    from registry_core.atomic import write_json
    from registry_llm.data.shard_files import FORMAT, FORMAT_VERSION, MANIFEST, ShardWriter

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50_000, size=tokens, dtype=np.uint16)
    ids.tofile(folder / "flat.bin")
    writer = ShardWriter(folder / "shards", "build-bench", np.dtype(np.uint16), shard_tokens=tokens // shards)
    doc = 4096  # "documents" of 4k tokens
    for start in range(0, tokens, doc):
        writer.add(ids[start : start + doc])
    infos = writer.finish()
    manifest = {
        "format": FORMAT, "version": FORMAT_VERSION, "fingerprint": "bench", "build": "build-bench",
        "tokenizer": {"sha256": "bench", "vocab_size": 50_000, "eos_id": None}, "dtype": "uint16",
        "n_tokens": tokens, "n_documents": sum(s.n_documents for s in infos),
        "shards": [s.as_dict() for s in infos], "cleaning": {}, "inputs": [], "stats": {},
    }
    write_json(folder / "shards" / MANIFEST, manifest, indent=1)


def run_child(kind: str, folder: Path, batches: int, batch_size: int, seq_len: int) -> dict[str, float]:
    """One loader in this (fresh) process: returns batches/s and memory figures."""
    import torch

    if kind == "registry":
        from registry_core import get_registry

        src = get_registry().build("data_source", "text-shards", out=str(folder / "shards"), seq_len=seq_len,
                                   val_fraction=0.0, verify_checksums=False)
        get_batch = src.token_loader(batch_size, seed=0).get_batch
    else:
        rng = np.random.default_rng(0)
        path = str(folder / "flat.bin")
        held = np.memmap(path, dtype=np.uint16, mode="r")
        high = len(held) - seq_len - 1

        def get_batch() -> tuple[torch.Tensor, torch.Tensor]:
            data = held if kind == "memmap" else np.memmap(path, dtype=np.uint16, mode="r")
            ix = rng.integers(0, high, size=batch_size)
            x = torch.stack([torch.from_numpy(data[i : i + seq_len].astype(np.int64)) for i in ix])
            y = torch.stack([torch.from_numpy(data[i + 1 : i + 1 + seq_len].astype(np.int64)) for i in ix])
            return x, y

    get_batch()
    rss0 = rss_mb()  # after imports and the first batch: growth is what the batches themselves add
    start = time.perf_counter()
    for _ in range(batches):
        x, y = get_batch()
    sec = time.perf_counter() - start
    assert tuple(x.shape) == (batch_size, seq_len) and tuple(y.shape) == (batch_size, seq_len)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"batches_per_s": batches / sec, "peak_rss_mb": peak, "rss_growth_mb": rss_mb() - rss0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=64_000_000)
    parser.add_argument("--batches", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        out = run_child(args.child, Path(args.folder), args.batches, args.batch_size, args.seq_len)
        print(json.dumps(out))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_corpus(folder, args.tokens, shards=4)
        results = {}
        for kind in ("registry", "memmap", "memmap-reopen"):
            cmd = [sys.executable, __file__, "--child", kind, "--folder", tmp, "--batches", str(args.batches),
                   "--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len)]
            results[kind] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    print(f"{args.tokens / 1e6:.0f}M tokens (uint16, {args.tokens * 2 / 1e6:.0f} MB), {args.batches} batches of "
          f"{args.batch_size} x {args.seq_len}")
    for kind, r in results.items():
        print(f"{kind:14} {r['batches_per_s']:9.1f} batches/s   peak RSS {r['peak_rss_mb']:7.1f} MB   "
              f"RSS growth over the run {r['rss_growth_mb']:7.1f} MB")
    reg = results["registry"]["batches_per_s"]
    print(f"ratio registry / memmap:        {reg / results['memmap']['batches_per_s']:.2f}  (goal >= 1.0)")
    print(f"ratio registry / memmap-reopen: {reg / results['memmap-reopen']['batches_per_s']:.2f}")


if __name__ == "__main__":
    main()
