"""Running a served model on uvicorn: the exposure check (loopback, or an API key, or ``--insecure``), the listening
socket before the start-up line, and SIGTERM / Ctrl-C ending in exit 0 after a grace period."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

from registry_core._errors import RegistryCoreError, UsageError

if TYPE_CHECKING:
    from registry_core.serve._app import Served

__all__ = ["api_key", "is_loopback", "run_server"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key(host: str, key_env: str | None, insecure: bool) -> str | None:
    """The API key read from ``key_env`` (None without one); UsageError for an empty variable, or for a host other
    machines reach without a key unless ``insecure`` (then a warning on stderr)."""
    key = None
    if key_env is not None:
        key = os.environ.get(key_env, "")
        if not key:
            raise UsageError(f"--api-key-env {key_env}: the environment variable is not set or empty")
    if not is_loopback(host) and key is None:
        if not insecure:
            raise UsageError(f"--host {host} is reachable from other machines and no API key is set; pass "
                             "--api-key-env VAR, or --insecure to serve it open")
        print(f"warning: serving on {host} without an API key (--insecure): anyone who reaches it may use it",
              file=sys.stderr, flush=True)
    return key


def run_server(app: Any, served: Served, host: str, port: int, grace: float, about: str = "") -> None:
    """Bind, start the model's workers, print the address, serve until SIGTERM / Ctrl-C, stop the workers."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RegistryCoreError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)  # connections queue from now on, before uvicorn's loop runs: the address printed works at once
    bound = sock.getsockname()[1]
    # uvicorn's annotation says int, but it waits with asyncio.wait_for, which takes fractions of a second too
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=max(grace, 0.1))  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    served.start()
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    details = "; ".join(p for p in (served.about, about) if p)
    print(f"serving {served.name} on http://{shown}:{bound}/v1 ({details}; SIGTERM or Ctrl-C stops)", flush=True)
    # uvicorn handles SIGTERM / SIGINT while it serves (stop accepting, let requests finish for the grace period)
    # and then raises the signal again for the handlers it found: no-ops here, so the command ends with exit 0
    before = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        served.stop(max(grace, 1.0))
        sock.close()
        for sig, handler in before.items():
            signal.signal(sig, handler)
    print("stopped", flush=True)
