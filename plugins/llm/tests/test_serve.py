"""``serve`` against real clients on loopback: the official ``openai`` package (completions, chat, streaming,
embeddings, auth failures, 429, bad parameters) and raw HTTP (malformed JSON, oversized bodies, wrong content
types). The runs are tiny real ones (a GPT pretrained a few steps on Python's docs, and the same instruction-tuned
on Python's documentation topics); greedy answers are compared with the library's own generation."""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")

from registry_core import Pipeline, compose  # noqa: E402
from registry_llm.commands import continue_prompt  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
PAIRS = ROOT / "tests" / "data" / "pydoc_pairs" / "pairs.jsonl"
MODEL = {"positional": {"use": "rope"},
         "backbone": {"use": "gpt", "embed_dim": 32, "depth": 2, "heads": 2, "max_positions": 192, "dropout": 0.0}}
TRAIN = {"batch_size": 8, "log_every": 5, "eval_every": 0, "checkpoint_every": 0, "device": "cpu", "seed": 0}
QUESTION = "What does the Python documentation say about if?"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-runs")
    base = {"name": "base", "data": {"use": "text-shards", "out": str(root / "shards"), "seq_len": 64,
                                     "val_fraction": 0.1},
            "tokenizer": {"use": "bpe", "vocab_size": 400}, **MODEL, "objective": {"use": "next-token"},
            "train": {**TRAIN, "steps": 30, "lr": 3e-3}}
    compose(base).run(root / "base")
    sft = {"name": "sft", "data": {"use": "instruction-pairs", "path": str(PAIRS), "seq_len": 192, "truncate": True},
           "tokenizer": {"use": "bpe", "path": str(root / "base" / "tokenizer" / "tokenizer.json")}, **MODEL,
           "weights": {"use": "text-run", "path": str(root / "base")}, "objective": {"use": "instruct"},
           "train": {**TRAIN, "steps": 30, "lr": 3e-3}}
    compose(sft).run(root / "sft")
    return root


def options(**overrides: Any) -> argparse.Namespace:
    values = {"max_batch": 8, "max_queue": 64, "max_tokens": 64, "max_prompt_tokens": None, "max_body_bytes": 1 << 16,
              "prefill_chunk": 16, "api_key": None}
    values.update(overrides)
    return argparse.Namespace(**values)


@contextmanager
def server(run: Path, *, start_engine: bool = True, **overrides: Any) -> Iterator[tuple[str, Any]]:
    """The app on a loopback port, uvicorn in a thread: (base URL, served model)."""
    import uvicorn

    from registry_llm.serve.app import Limits, create_app
    from registry_llm.serve.command import load_served_model

    args = options(**overrides)
    model = load_served_model(run, None, args)
    app = create_app(model, Limits(max_tokens=args.max_tokens, max_prompt_tokens=args.max_prompt_tokens,
                                   max_body_bytes=args.max_body_bytes, api_key=args.api_key))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not uv.started:
        time.sleep(0.02)
    if start_engine:
        model.engine.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", model
    finally:
        model.engine.stop()
        uv.should_exit = True
        thread.join(10)
        sock.close()


def client(url: str, key: str = "unused") -> Any:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


def post(url: str, body: bytes, content_type: str = "application/json", key: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": content_type, **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def library_text(run: Path, prompt: str, max_tokens: int, chat: bool) -> str:
    pipeline = Pipeline.load(run)
    text = continue_prompt(pipeline, prompt, chat, max_new_tokens=max_tokens, temperature=0.0)
    head = pipeline.data.template.prompt(prompt) if chat else prompt
    return text[len(head):]


def test_completions_chat_streaming_and_embeddings_through_the_openai_client(runs: Path) -> None:
    want = library_text(runs / "sft", QUESTION, 40, chat=True)
    plain = library_text(runs / "base", "The with statement", 24, chat=False)
    with server(runs / "sft") as (url, _):
        api = client(url)
        assert [m.id for m in api.models.list().data] == ["sft"]
        done = api.chat.completions.create(model="sft", messages=[{"role": "user", "content": QUESTION}],
                                           max_tokens=40, temperature=0)
        assert done.choices[0].message.content == want and done.choices[0].finish_reason in ("stop", "length")
        stream = api.chat.completions.create(model="sft", messages=[{"role": "user", "content": QUESTION}],
                                             max_tokens=40, temperature=0, stream=True,
                                             stream_options={"include_usage": True})
        chunks = list(stream)
        assert chunks[0].choices[0].delta.role == "assistant"
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == want
        assert chunks[-1].usage.completion_tokens == done.usage.completion_tokens
        assert done.usage.prompt_tokens > 10  # the template wraps the question
        emb = api.embeddings.create(model="sft", input=["the for loop", "context managers"])  # base64 by default
        raw = post(f"{url}/v1/embeddings", json.dumps({"input": ["the for loop"]}).encode())[1]
        assert len(emb.data) == 2 and len(emb.data[0].embedding) == 32
        assert np.allclose(emb.data[0].embedding, raw["data"][0]["embedding"], atol=1e-6)
    with server(runs / "base") as (url, _):
        api = client(url)
        text = api.completions.create(model="base", prompt="The with statement", max_tokens=24, temperature=0)
        assert text.choices[0].text == plain and text.usage.completion_tokens == 24
        streamed = "".join(c.choices[0].text for c in api.completions.create(
            model="base", prompt="The with statement", max_tokens=24, temperature=0, stream=True))
        assert streamed == plain
        cut = plain[len(plain) // 2:][:3]  # a stop string from the middle of the answer
        stopped = api.completions.create(model="base", prompt="The with statement", max_tokens=24, temperature=0,
                                         stop=[cut])
        assert stopped.choices[0].text == plain[: plain.index(cut)] and stopped.choices[0].finish_reason == "stop"
        with pytest.raises(openai.BadRequestError) as bad:
            api.chat.completions.create(model="base", messages=[{"role": "user", "content": "hi"}])
        assert bad.value.body["code"] == "no_chat_template"


def test_sixteen_parallel_streams_complete_with_their_solo_answers(runs: Path) -> None:
    prompts = [f"The {w} statement" for w in ("with", "for", "if", "while", "try", "import", "return", "class",
                                             "def", "global", "pass", "raise", "yield", "assert", "del", "break")]
    with server(runs / "base", max_batch=8) as (url, model):
        api = client(url)
        solo = {p: api.completions.create(model="base", prompt=p, max_tokens=20, temperature=0).choices[0].text
                for p in prompts}
        got: dict[str, str] = {}

        def stream(prompt: str) -> None:
            pieces = api.completions.create(model="base", prompt=prompt, max_tokens=20, temperature=0, stream=True)
            got[prompt] = "".join(c.choices[0].text for c in pieces)

        threads = [threading.Thread(target=stream, args=(p,)) for p in prompts]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert got == solo
        assert max(model.engine.stats.batch_sizes) > 1  # they shared decoding steps
        metrics = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
        assert 'registry_core_requests_total{route="/v1/completions",status="200"} 32.0' in metrics
        assert "registry_core_batch_size_bucket" in metrics and "registry_core_first_token_seconds_count" in metrics


def test_an_api_key_guards_every_route_but_health(runs: Path) -> None:
    with server(runs / "base", api_key="s3cret") as (url, _):
        with pytest.raises(openai.AuthenticationError):
            client(url, "wrong").models.list()
        assert [m.id for m in client(url, "s3cret").models.list().data] == ["base"]
        status, body = post(f"{url}/v1/completions", b'{"prompt": "x"}')
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
        assert urllib.request.urlopen(f"{url}/health", timeout=10).status == 200
        with pytest.raises(urllib.error.HTTPError) as metrics:
            urllib.request.urlopen(f"{url}/metrics", timeout=10)
        assert metrics.value.code == 401


@pytest.mark.parametrize(("body", "status", "param", "code"), [
    ({"prompt": "x", "temperature": 5}, 400, "temperature", "invalid_value"),
    ({"prompt": "x", "n": 2}, 400, "n", "invalid_value"),
    ({"prompt": "x", "max_tokens": 1000}, 400, "max_tokens", "invalid_value"),
    ({"prompt": "x " * 150, "max_tokens": 60}, 400, "max_tokens", "context_length_exceeded"),
    ({"model": "gpt-4", "prompt": "x"}, 404, "model", "model_not_found"),
    ({"max_tokens": 4}, 400, "prompt", "missing_required_parameter"),
    ({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, 400, "stop", "invalid_value"),
])
def test_bad_parameters_are_openai_errors(runs: Path, body: dict, status: int, param: str, code: str) -> None:
    with server(runs / "base") as (url, _):
        got, answer = post(f"{url}/v1/completions", json.dumps(body).encode())
    assert got == status and answer["error"]["param"] == param and answer["error"]["code"] == code, answer
    assert set(answer["error"]) == {"message", "type", "param", "code"}


def test_malformed_oversized_and_mistyped_bodies(runs: Path) -> None:
    with server(runs / "base", max_body_bytes=1000) as (url, _):
        assert post(f"{url}/v1/completions", b'{"prompt": "x",')[0] == 400
        status, body = post(f"{url}/v1/completions", json.dumps({"prompt": "x" * 2000}).encode())
        assert status == 413 and body["error"]["code"] == "body_too_large"
        assert post(f"{url}/v1/completions", b"prompt=x", "application/x-www-form-urlencoded")[0] == 415
        assert post(f"{url}/v1/completions", b"[1, 2]")[0] == 400
        status, body = post(f"{url}/v1/nothing", b"{}")
        assert status == 404 and body["error"]["code"] == "not_found"
        with pytest.raises(urllib.error.HTTPError) as wrong_method:
            urllib.request.urlopen(f"{url}/v1/completions", timeout=10)
        assert wrong_method.value.code == 405


def test_a_full_queue_answers_429_and_a_gone_client_cancels(runs: Path) -> None:
    with server(runs / "base", start_engine=False, max_batch=1, max_queue=2) as (url, model):
        api = client(url)
        answers: list[str] = []
        waiting = [threading.Thread(target=lambda: answers.append(
            api.completions.create(model="base", prompt="The", max_tokens=4, temperature=0).choices[0].text))
            for _ in range(2)]
        for t in waiting:
            t.start()
        deadline = time.monotonic() + 30
        while model.engine.queue_depth < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(openai.RateLimitError) as busy:
            api.completions.create(model="base", prompt="The", max_tokens=4)
        assert busy.value.response.headers["retry-after"] == "1"
        model.engine.start()
        for t in waiting:
            t.join(60)
        assert len(answers) == 2 and answers[0] == answers[1]
    with server(runs / "base", start_engine=False) as (url, model):
        # a client that goes away: its queued request is cancelled, never run
        gone = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        body = b'{"prompt": "The", "max_tokens": 4}'
        gone.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        deadline = time.monotonic() + 30
        while model.engine.queue_depth < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        queued = model.engine.queue[0]
        gone.close()
        assert queued.cancelled.wait(10)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "registry_core", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--host", "0.0.0.0"], {}, "error: --host 0.0.0.0 is reachable from other machines and no API key is set"),
    (["--api-key-env", "NO_SUCH_KEY_VAR"], {"NO_SUCH_KEY_VAR": ""}, "error: --api-key-env NO_SUCH_KEY_VAR: the "
                                                                    "environment variable is not set or empty"),
    (["--max-batch", "0"], {}, "error: --max-batch must be >= 1, got 0"),
    (["--name", "x"], {"TARGET": "bert-base-uncased"}, "error: card llm:bert-base-uncased is not a causal language "
                                                       "model"),
    (["--name", "x"], {"TARGET": "no-such-model"}, "error: no card named 'no-such-model'"),
])
def test_unsafe_or_bad_options_are_refused_in_one_line(runs: Path, args: list[str], env: dict[str, str],
                                                       message: str) -> None:
    proc = cli(env.pop("TARGET", str(runs / "base")), "--port", "0", *args, env=env)
    _, err = proc.communicate(timeout=120)
    usage = message.startswith("error: --")  # a bad option: exit 2; a run or card that cannot be served: exit 1
    assert proc.returncode == (2 if usage else 1) and err.startswith(message) and err.count("\n") == 1, err


def test_sigterm_finishes_in_flight_requests_and_exits_0(runs: Path) -> None:
    proc = cli(str(runs / "base"), "--port", "0", "--grace", "5")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving base on http://127.0.0.1:"), line + (proc.stderr.read() if proc.stderr else "")
        url = line.split()[3].removesuffix("/v1")
        stream = client(url).completions.create(model="base", prompt="The", max_tokens=60, temperature=0,
                                                stream=True)
        first = next(iter(stream))
        proc.send_signal(signal.SIGTERM)
        rest = "".join(c.choices[0].text for c in stream)  # the running request still completes
        assert first.choices[0].text + rest
        assert proc.wait(30) == 0
        with pytest.raises(openai.APIConnectionError):
            client(url).models.list()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_embeddings_in_base64_are_the_float_rows(runs: Path) -> None:
    with server(runs / "base") as (url, _):
        status, floats = post(f"{url}/v1/embeddings", json.dumps({"input": "hi there"}).encode())
        _, packed = post(f"{url}/v1/embeddings", json.dumps({"input": "hi there", "encoding_format": "base64"}).encode())
    assert status == 200
    row = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    assert np.array_equal(row, np.asarray(floats["data"][0]["embedding"], dtype="<f4"))


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the server's RSS from /proc")
def test_a_minute_of_mixed_load_has_no_server_errors_and_a_flat_rss(runs: Path) -> None:
    """Eight clients for 60 s: completions and chats, streamed and not, some cut off mid-stream; every answer is a
    200 (or the client's own disconnect), and the server's RSS after the first 15 s grows by less than 10%."""
    proc = cli(str(runs / "sft"), "--port", "0", "--max-batch", "4")
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[3]
        api = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=120)
        statuses: list[int] = []
        errors: list[str] = []
        stop = time.monotonic() + 60

        def work(n: int) -> None:
            k = 0
            while time.monotonic() < stop:
                k += 1
                try:
                    if (n + k) % 3 == 0:
                        answer = api.chat.completions.create(messages=[{"role": "user", "content": QUESTION}],
                                                             model="sft", max_tokens=24, temperature=0.7, seed=k)
                        statuses.append(200 if answer.choices else 0)
                    elif (n + k) % 3 == 1:
                        stream = api.completions.create(model="sft", prompt=f"The {k} statement", max_tokens=32,
                                                        stream=True, temperature=0.9)
                        for i, _ in enumerate(stream):
                            if n % 2 and i == 3:  # half the streaming clients hang up early
                                stream.close()
                                break
                        statuses.append(200)
                    else:
                        answer = api.completions.create(model="sft", prompt="The with", max_tokens=16, temperature=0)
                        statuses.append(200 if answer.choices else 0)
                except openai.APIStatusError as exc:
                    statuses.append(exc.status_code)
                except Exception as exc:  # a connection problem is an error of the server too
                    errors.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        time.sleep(15)
        warm = _rss_kib(proc.pid)
        for t in threads:
            t.join(180)
        end = _rss_kib(proc.pid)
        print(f"soak: {len(statuses)} answers, RSS {warm} KiB after warm-up, {end} KiB at the end")
        assert not errors, errors[:3]
        assert len(statuses) > 50 and set(statuses) == {200}, sorted(set(statuses))
        assert end < warm * 1.10, f"RSS {warm} KiB after warm-up, {end} KiB after a minute"
        metrics = urllib.request.urlopen(f"{url.removesuffix('/v1')}/metrics", timeout=10).read().decode()
        assert 'status="5' not in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        proc.communicate()
