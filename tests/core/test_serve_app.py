"""The served app every modality shares (``registry_core.serve``): the API key, body limits, OpenAI's error JSON
for every failure (never a traceback), request counting by route, ``/health`` and ``/v1/models``, on a real
uvicorn server on loopback; and how ``serve`` finds who serves a target."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from fastapi import Request

from registry_core import NotFoundError, RegistryCoreError, get_registry
from registry_core.cli._serve import served_modality
from registry_core.serve import APIError, ServeContext, Served, ServeLimits, create_app


def echo_routes(app: Any, context: ServeContext) -> None:
    @app.post("/v1/echo")
    async def echo(request: Request) -> dict[str, Any]:
        body = await context.json(request)
        if body.get("fail") == "api":
            raise APIError(422, "fail: the value asked for an error", param="fail", code="asked")
        if body.get("fail") == "crash":
            raise RuntimeError("a bug")
        return {"echo": body}

    @app.get("/v1/count")
    async def count(n: int) -> dict[str, int]:  # a declared parameter: FastAPI validates it
        return {"n": n}

    @app.post("/v1/bytes")
    async def size(request: Request) -> dict[str, int]:
        return {"bytes": len(await context.body(request, ("application/octet-stream",)))}


@contextmanager
def serving(limits: ServeLimits) -> Iterator[str]:
    import uvicorn

    started: list[bool] = []
    served = Served(name="echo", install=echo_routes, created=7, health=lambda: {"queue": 0},
                    start=lambda: started.append(True))
    app = create_app(served, limits)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    assert started == []  # the runner starts the model's workers, not the app


def call(url: str, body: bytes | None = None, content_type: str = "application/json", key: str | None = None,
         method: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": content_type, **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_routes_errors_and_limits_answer_openai_error_objects() -> None:
    with serving(ServeLimits(max_body_bytes=64)) as url:
        assert call(f"{url}/v1/echo", b'{"a": 1}') == (200, {"echo": {"a": 1}})
        assert call(f"{url}/v1/models")[1]["data"] == [{"id": "echo", "object": "model", "created": 7,
                                                       "owned_by": "registry-core"}]
        assert call(f"{url}/health") == (200, {"status": "ok", "model": "echo", "queue": 0})
        cases = {
            "asked": call(f"{url}/v1/echo", b'{"fail": "api"}'),
            "crash": call(f"{url}/v1/echo", b'{"fail": "crash"}'),
            "malformed": call(f"{url}/v1/echo", b'{"a": '),
            "array": call(f"{url}/v1/echo", b"[1, 2]"),
            "large": call(f"{url}/v1/echo", json.dumps({"a": "x" * 100}).encode()),
            "form": call(f"{url}/v1/echo", b"a=1", content_type="application/x-www-form-urlencoded"),
            "route": call(f"{url}/v1/nothing", b"{}"),
            "method": call(f"{url}/v1/echo", method="GET"),
            "raw type": call(f"{url}/v1/bytes", b"abc"),
            "declared": call(f"{url}/v1/count?n=many"),
        }
        statuses = {name: (status, body["error"]["code"]) for name, (status, body) in cases.items()}
        assert statuses == {"asked": (422, "asked"), "crash": (500, None), "malformed": (400, "invalid_json"),
                            "array": (400, "invalid_json"), "large": (413, "body_too_large"),
                            "form": (415, "unsupported_media_type"), "route": (404, "not_found"),
                            "method": (405, "method_not_allowed"), "raw type": (415, "unsupported_media_type"),
                            "declared": (400, "invalid_value")}
        assert cases["declared"][1]["error"]["param"] == "n" and call(f"{url}/v1/count?n=3") == (200, {"n": 3})
        assert cases["asked"][1]["error"]["param"] == "fail"
        assert cases["crash"][1]["error"]["message"] == "internal error: RuntimeError: a bug"
        assert call(f"{url}/v1/bytes", b"abc", content_type="application/octet-stream") == (200, {"bytes": 3})
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert 'registry_core_requests_total{route="/v1/echo",status="200"} 1.0' in metrics
        assert 'registry_core_requests_total{route="other",status="404"} 1.0' in metrics  # unknown paths: one label


def test_with_a_key_every_route_but_health_needs_it() -> None:
    with serving(ServeLimits(api_key="s3cret")) as url:
        assert call(f"{url}/health")[0] == 200
        for path in ("/v1/models", "/metrics", "/v1/nothing"):
            status, body = call(f"{url}{path}")
            assert (status, body["error"]["code"], body["error"]["type"]) == (401, "invalid_api_key",
                                                                             "authentication_error")
        assert call(f"{url}/v1/echo", b"{}", key="wrong")[0] == 401
        assert call(f"{url}/v1/echo", b"{}", key="s3cret") == (200, {"echo": {}})


def test_serve_finds_the_modality_of_a_run_or_card_and_refuses_the_rest(tmp_path: Path) -> None:
    reg = get_registry()
    assert served_modality(reg, "gpt2") == "text"
    assert served_modality(reg, "prithvi-eo-1.0-100m") == "imagery"
    with pytest.raises(NotFoundError, match="no card named 'gtp2'; did you mean 'gpt2'"):
        served_modality(reg, "gtp2")
    with pytest.raises(RegistryCoreError, match="is not a run folder"):
        served_modality(reg, str(tmp_path))
    with pytest.raises(RegistryCoreError, match="is not a run folder"):
        served_modality(reg, str(tmp_path / "missing" / "run"))
    (tmp_path / "pipeline.toml").write_text('[data]\nuse = "no-such-source"\n')
    with pytest.raises(RegistryCoreError, match=r"its pipeline\.toml does not compose"):
        served_modality(reg, str(tmp_path))
