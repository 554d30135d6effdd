"""Reading assets that are not plainly public: links signed for Planetary Computer, and the credentials NASA
Earthdata and requester-pays buckets ask for.

Signing makes copies of the items for the readers only: the datacube records the unsigned links (a SAS token
expires and is nobody's business in a provenance record). Credentials are checked before the search, so a
missing login is one line at once, not a failed read after minutes; GDAL then finds them in its environment.
"""

from __future__ import annotations

import netrc
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final
from urllib.parse import urlparse

import pystac

from registry_core import RegistryCoreError

__all__ = ["EARTHDATA_HOST", "AccessError", "asset_access", "check_credentials", "sign_items"]

#: The host NASA Earthdata logins are kept for (``~/.netrc``: ``machine urs.earthdata.nasa.gov login ... password ...``).
EARTHDATA_HOST: Final = "urs.earthdata.nasa.gov"


class AccessError(RegistryCoreError, PermissionError):
    """Credentials or a signing package that reading the assets needs are missing; the message says how to add them."""


def _netrc_has(host: str) -> bool:
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:
        return netrc.netrc(str(path)).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _aws_credentials() -> bool:
    if os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"):
        return True
    shared = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    return shared.is_file()


def check_credentials(kind: str, where: str) -> dict[str, str]:
    """The GDAL settings reading ``where``'s assets needs for ``kind`` (``none``, ``earthdata``,
    ``aws-requester-pays``); AccessError in one line, saying what to set, when none are found."""
    if kind == "none":
        return {}
    if kind == "earthdata":
        token = os.environ.get("EARTHDATA_TOKEN")
        if token:
            return {"GDAL_HTTP_HEADERS": f"Authorization: Bearer {token}"}
        if _netrc_has(EARTHDATA_HOST):  # GDAL follows the login redirect with the netrc entry and keeps the cookie
            jar = str(Path.home() / ".registry-core-earthdata-cookies.txt")
            return {"GDAL_HTTP_NETRC": "YES", "GDAL_HTTP_COOKIEFILE": jar, "GDAL_HTTP_COOKIEJAR": jar}
        raise AccessError(f"{where} needs a NASA Earthdata login: set EARTHDATA_TOKEN (a token from "
                          f"https://{EARTHDATA_HOST}) or add 'machine {EARTHDATA_HOST} login USER password PASS' to "
                          "~/.netrc")
    if kind == "aws-requester-pays":
        if not _aws_credentials():
            raise AccessError(f"{where} is in a requester-pays bucket: set AWS credentials (AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or ~/.aws/credentials); reads are billed to that "
                              "account")
        return {"AWS_REQUEST_PAYER": "requester"}
    raise AccessError(f"{where}: credentials {kind!r} are unknown; expected none, earthdata or aws-requester-pays")


@contextmanager
def asset_access(settings: dict[str, str]) -> Iterator[None]:
    """GDAL ``settings`` in the process environment while the block runs (every reader thread sees them), then the
    environment as it was."""
    before = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def sign_items(items: Sequence[pystac.Item], signing: str, where: str, retries: int = 4) -> list[pystac.Item]:
    """Copies of ``items`` whose asset links the readers can open (``planetary-computer``: SAS-signed); the
    items themselves keep their links. A token service that fails is asked ``retries`` more times (0.5 s doubling),
    not the package's default of ten (minutes of waiting)."""
    if signing == "none":
        return list(items)
    if signing != "planetary-computer":
        raise AccessError(f"{where}: signing {signing!r} is unknown; expected none or planetary-computer")
    try:
        import planetary_computer
    except ImportError:
        raise AccessError(f"{where} signs its asset links with the planetary-computer package; install it with "
                          "pip install 'registry-gfm[planetary-computer]'") from None
    try:
        from planetary_computer.sas import BLOB_STORAGE_DOMAIN, get_token
        from planetary_computer.utils import parse_blob_url

        containers = {parse_blob_url(url) for item in items for asset in item.assets.values()
                      if (url := urlparse(asset.href)).netloc.endswith(BLOB_STORAGE_DOMAIN)}
        for account, container in sorted(containers):  # cached by the package for the signing below
            get_token(account, container, retry_total=retries, retry_backoff_factor=0.5)
        return [planetary_computer.sign(item.clone()) for item in items]
    except Exception as exc:  # requests' HTTPError, a token service that is down
        raise AccessError(f"{where}: signing asset links with planetary-computer failed: {type(exc).__name__}: "
                          f"{exc}") from exc
