"""The server's error answers: an :class:`APIError` is OpenAI's error object with its HTTP status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["APIError", "error_body"]


class APIError(Exception):
    """An answer other than 200: its status, and the fields of OpenAI's error object."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = dict(headers or {})


def error_body(error: APIError) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``: what every client of the OpenAI API parses."""
    return {"error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}}
