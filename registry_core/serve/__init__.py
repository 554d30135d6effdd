"""``serve``'s HTTP runtime, shared by every modality: the app with ``/health``, ``/metrics``, ``/v1/models``, the
API key and OpenAI's error JSON (``create_app``), and running it (``run_server``). A plugin serves its models by
naming a server in its :class:`~registry_core.ModalitySpec` that returns a :class:`Served` with its routes.

Its names load on first use (the app needs the ``serve`` extra: fastapi, uvicorn, prometheus-client).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from registry_core.serve._errors import APIError, error_body

if TYPE_CHECKING:
    from registry_core.serve._app import ServeContext, Served, ServeLimits, create_app, read_body, read_json
    from registry_core.serve._run import api_key, is_loopback, run_server

__all__ = ["APIError", "ServeContext", "ServeLimits", "Served", "api_key", "create_app", "error_body", "is_loopback",
           "read_body", "read_json", "run_server"]

#: Public name -> the module that defines it.
_NAMES = {"ServeContext": "_app", "ServeLimits": "_app", "Served": "_app", "create_app": "_app", "read_body": "_app",
          "read_json": "_app", "api_key": "_run", "is_loopback": "_run", "run_server": "_run"}


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'registry_core.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(f"registry_core.serve.{_NAMES[name]}"), name)
