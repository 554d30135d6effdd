"""``serve`` under load (the serve issue): output tokens/s, time to first token and p50 / p99 latency at concurrency
1, 4 and 16 on loopback, side by side in one run, for

  (a) our server (``serve RUN``: continuous batching),
  (b) our server one request at a time (``serve RUN --max-batch 1``),
  (c) ``transformers serve`` on the same model exported by ``export --to hf-gpt2`` (its default mode, and with
      ``--continuous-batching``),
  (d) transformers' ``generate(use_cache=True)`` on that model behind our HTTP layer (this script's ``--hf-server``
      mode: requests waiting when a batch starts are generated together, left-padded: static batching, ideal for
      this load where every request asks the same number of tokens).

Every request streams ``--max-tokens`` tokens (greedy, ``ignore_eos``) after one of a fixed set of prompts; each of
the ``c`` clients sends ``--requests`` requests back to back. The model is a GPT-2-layout ``gpt`` (learned
positions, tied head) with a BPE vocabulary trained on Python's docs, trained one step (weights do not change the
cost). Every server gets the same torch threads (serve's default: the usable cores less one). Goals at concurrency
16: (a) >= 4x (b) and >= 1.5x (c) in tokens/s, and (a)'s p99 latency < 3x its p50. Tokens are counted from the
streamed chunks' ``usage`` where a server reports it, else one per chunk with text.

    .venv/bin/python bench/serve_load.py                  # about 5 minutes on 2 CPU cores
    .venv/bin/python bench/serve_load.py --concurrency 1 16 --requests 2 --max-tokens 32
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ["The with statement", "A for loop over a list", "Exceptions are raised when", "The import system",
           "Classes provide a means", "A generator function", "The global statement", "Dictionaries map keys"]


def build_run(folder: Path, args: argparse.Namespace) -> Path:
    from registry_core import compose

    run = folder / "run"
    if (run / "model.safetensors").is_file():
        return run
    config = {
        "name": "serve-bench",
        "data": {"use": "text-shards", "out": str(folder / "shards"), "seq_len": 128},
        "tokenizer": {"use": "bpe", "vocab_size": args.vocab},
        "positional": {"use": "learned"},
        "backbone": {"use": "gpt", "embed_dim": args.embed_dim, "depth": args.depth, "heads": args.heads,
                     "max_positions": args.context, "dropout": 0.0},
        "objective": {"use": "next-token", "tie_weights": True},
        "train": {"steps": 1, "batch_size": 2, "log_every": 1, "checkpoint_every": 0, "device": "cpu"},
    }
    compose(config).run(run)
    return run


class HFEngine:
    """The serving engine's interface over transformers' ``generate``: static batches of what is waiting."""

    def __init__(self, model: Any, max_batch: int, max_queue: int, capacity: int) -> None:
        import collections

        self.model, self.max_batch, self.max_queue, self.capacity = model, max_batch, max_queue, capacity
        self.queue: collections.deque[Any] = collections.deque()
        self.active: list[Any] = []
        self.on_step: Any = None
        self._wake = threading.Condition()
        self._running = False

    @property
    def queue_depth(self) -> int:
        return len(self.queue)

    @property
    def running(self) -> int:
        return len(self.active)

    def submit(self, request: Any) -> bool:
        with self._wake:
            if len(self.queue) >= self.max_queue:
                return False
            self.queue.append(request)
            self._wake.notify()
        return True

    def start(self) -> None:
        self._running = True
        threading.Thread(target=self._loop, daemon=True).start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._wake:
            self._running = False
            self._wake.notify()

    def _loop(self) -> None:
        import torch
        from transformers.generation.streamers import BaseStreamer

        engine = self

        class Rows(BaseStreamer):  # type: ignore[misc]
            def __init__(self) -> None:
                self.prompt_seen = False

            def put(self, value: torch.Tensor) -> None:
                if not self.prompt_seen:  # generate hands the prompt over first
                    self.prompt_seen = True
                    return
                for request, token in zip(engine.active, value.reshape(-1).tolist(), strict=True):
                    if len(request.generated) < request.max_tokens:
                        request.generated.append(token)
                        request.emit("token", token)

            def end(self) -> None:
                pass

        while True:
            with self._wake:
                while self._running and not self.queue:
                    self._wake.wait()
                if not self._running:
                    return
                self.active = [self.queue.popleft() for _ in range(min(self.max_batch, len(self.queue)))]
            longest = max(len(r.prompt) for r in self.active)
            ids = torch.zeros(len(self.active), longest, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, r in enumerate(self.active):
                ids[i, longest - len(r.prompt):] = torch.tensor(r.prompt)
                mask[i, longest - len(r.prompt):] = 1
            new = max(r.max_tokens for r in self.active)
            with torch.inference_mode():
                self.model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=new,
                                    min_new_tokens=new, use_cache=True, pad_token_id=0, streamer=Rows())
            for r in self.active:
                r.emit("done", "length")
            self.active = []


def hf_server(run: Path, max_batch: int) -> int:
    """``--hf-server RUN``: the run exported to transformers, behind our app; prints the address like serve."""
    import socket

    import torch
    import transformers
    import uvicorn

    from registry_core import Pipeline
    from registry_core.training.threads import choose_threads
    from registry_llm.serve.app import Limits, ServedModel, create_app
    from registry_llm.weights.hf_gpt2 import export_run

    torch.set_num_threads(choose_threads(None).torch)  # the same threads as serve gives its model
    pipeline = Pipeline.load(run)
    folder = tempfile.mkdtemp(prefix="serve-bench-hf-")
    export_run(pipeline, folder)
    model = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
    capacity = int(model.config.n_positions)
    engine = HFEngine(model, max_batch, 256, capacity)
    served = ServedModel(name="serve-bench", tokenizer=pipeline.tokenizer, template=None, engine=engine,  # type: ignore[arg-type]
                         embed=lambda batch: None, eos_id=pipeline.tokenizer.eos_id)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    server = uvicorn.Server(uvicorn.Config(create_app(served, Limits(max_tokens=1024)), log_level="warning",
                                           lifespan="off", access_log=False))
    engine.start()
    print(f"serving serve-bench on http://127.0.0.1:{sock.getsockname()[1]}/v1 (transformers generate)", flush=True)
    before = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    server.run(sockets=[sock])
    for sig, handler in before.items():
        signal.signal(sig, handler)
    engine.stop()
    return 0


def one_request(port: int, prompt: str, max_tokens: int, model: str | None = None) -> tuple[float, float, int]:
    """(seconds to the first token, seconds to the end, tokens) of one streamed completion."""
    ours = model is None  # transformers serve refuses fields it does not know (ignore_eos is vLLM's and ours)
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True,
                       **({"ignore_eos": True, "stream_options": {"include_usage": True}} if ours else {"model": model})})
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {response.read()[:200]!r}")
    first, tokens, counted = 0.0, 0, 0
    for raw in response:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if chunk.get("choices") and chunk["choices"][0].get("text"):
            first = first or time.perf_counter() - start
            counted += 1
        if chunk.get("usage"):
            tokens = int(chunk["usage"]["completion_tokens"])
    conn.close()
    return first, time.perf_counter() - start, tokens or counted


def load(port: int, concurrency: int, requests: int, max_tokens: int, model: str | None) -> dict[str, float]:
    results: list[tuple[float, float, int]] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        for k in range(requests):
            got = one_request(port, PROMPTS[(n + k) % len(PROMPTS)], max_tokens, model)
            with lock:
                results.append(got)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    latencies = sorted(r[1] for r in results)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    return {"tok/s": sum(r[2] for r in results) / wall, "ttft": statistics.median(r[0] for r in results),
            "p50": statistics.median(latencies), "p99": p99}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(command: list[str], port: int | None = None, env: dict[str, str] | None = None
                 ) -> tuple[subprocess.Popen[str], int]:
    """Start a server; its port from its first line (ours), or ``port`` once /v1/models answers (transformers)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                            env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    if port is None:
        line = proc.stdout.readline()
        if not line.startswith("serving "):
            proc.kill()
            raise RuntimeError(f"the server did not start: {command}")
        return proc, int(line.split("127.0.0.1:")[1].split("/")[0])
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/v1/models")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the server did not start: {command}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=2, help="requests each client sends, one after another")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--embed-dim", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the run here (reused when present)")
    parser.add_argument("--hf-server", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hf_server is not None:
        return hf_server(args.hf_server, args.max_batch)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="serve-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    run = build_run(work, args)
    py = sys.executable
    from registry_core.training.threads import choose_threads

    threads = choose_threads(None).torch
    exported = work / "hf"
    if not (exported / "config.json").is_file():
        subprocess.run([py, "-m", "registry_core", "export", str(run), "--to", "hf-gpt2", str(exported)], check=True,
                       cwd=ROOT, stdout=subprocess.DEVNULL)
    cli = str(Path(py).with_name("transformers"))
    ours = ["--port", "0", "--max-queue", "256", "--max-tokens", "1024", "--threads", str(threads)]
    sides: dict[str, tuple[list[str], bool]] = {
        "(a) serve": ([py, "-m", "registry_core", "serve", str(run), "--max-batch", str(args.max_batch), *ours],
                      False),
        "(b) serve --max-batch 1": ([py, "-m", "registry_core", "serve", str(run), "--max-batch", "1", *ours], False),
        "(c) transformers serve": ([cli, "serve", str(exported), "--device", "cpu", "--host", "127.0.0.1"], True),
        "(c') transformers serve --cb": ([cli, "serve", str(exported), "--device", "cpu", "--host", "127.0.0.1",
                                          "--continuous-batching"], True),
        "(d) transformers generate": ([py, str(Path(__file__).resolve()), "--hf-server", str(run), "--max-batch",
                                       str(args.max_batch)], False),
    }
    table: dict[tuple[str, int], dict[str, float]] = {}
    for name, (command, hf_cli) in sides.items():
        port = free_port() if hf_cli else None
        try:
            proc, port = start_server(command + (["--port", str(port)] if hf_cli else []), port,
                                      {"OMP_NUM_THREADS": str(threads)})
        except RuntimeError as exc:
            print(f"skipped {name}: {exc}")
            continue
        model = str(exported) if hf_cli else None
        try:
            one_request(port, PROMPTS[0], 8, model)  # warm-up
            for c in args.concurrency:
                table[name, c] = load(port, c, args.requests, args.max_tokens, model)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"serve under load: gpt D={args.embed_dim} L={args.depth} H={args.heads} V={args.vocab} (GPT-2 layout), "
          f"{args.max_tokens} tokens per request, {args.requests} requests per client, CPU "
          f"{os.cpu_count()} cores, torch threads per server: {threads} (serve's default: the usable cores less one)")
    print(f"{'server':<30} {'conc':>4} {'tok/s':>8} {'TTFT p50 s':>10} {'p50 s':>7} {'p99 s':>7}")
    for (name, c), r in table.items():
        print(f"{name:<30} {c:>4} {r['tok/s']:>8.1f} {r['ttft']:>10.3f} {r['p50']:>7.2f} {r['p99']:>7.2f}")
    for c in args.concurrency:
        a = table.get(("(a) serve", c), {}).get("tok/s", float("nan"))
        ratios = ", ".join(f"(a)/{n.split()[0]} {a / table[n, c]['tok/s']:.2f}x" for n in sides
                           if n != "(a) serve" and (n, c) in table)
        print(f"concurrency {c:>2}: {ratios}; (a) p99/p50 "
              f"{table['(a) serve', c]['p99'] / table['(a) serve', c]['p50']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
