"""The end of ``make demo``: serve a run, stream one chat completion through the official ``openai`` client, stop.

    .venv/bin/python examples/serve_smoke.py runs/sft-tiny

Starts ``python -m registry_core serve RUN --port 0`` (loopback, any free port), reads the address it prints,
streams the answer to one question as it arrives, then sends SIGTERM and checks the server exits 0.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

QUESTION = "What does the Python documentation say about the with statement?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="an instruction-tuned text run (its chat template answers the question)")
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()
    from openai import OpenAI

    started = time.monotonic()
    server = subprocess.Popen([sys.executable, "-m", "registry_core", "serve", args.run, "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline().strip()
        if not line.startswith("serving "):
            print(f"error: serve did not start (exit {server.wait(30)})", file=sys.stderr)
            return 1
        print(line, flush=True)
        url = line.split(" on ", 1)[1].split()[0]
        client = OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60)
        print(f"Q: {QUESTION}\nA: ", end="", flush=True)
        stream = client.chat.completions.create(model=client.models.list().data[0].id, stream=True, temperature=0,
                                                max_tokens=args.max_tokens,
                                                messages=[{"role": "user", "content": QUESTION}])
        for chunk in stream:
            if chunk.choices:
                print(chunk.choices[0].delta.content or "", end="", flush=True)
        print()
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(30)
    print(f"serve stopped with exit {code} after {time.monotonic() - started:.1f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
