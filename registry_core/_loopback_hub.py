"""A Hugging Face Hub stand-in on 127.0.0.1, for tests that drive the real ``huggingface_hub`` client.

``LoopbackHub`` is an HTTP server (stdlib ``ThreadingHTTPServer``, one thread per connection, HTTP/1.1
keep-alive) that holds model and dataset repos in memory, laid out as on the Hub: each ``add_repo`` is a commit
(a deterministic 40-hex sha) a branch points at, older commits stay reachable by sha. Files at or above a size
threshold, and weights / parquet files of any size, are LFS files: their ETag is the sha256 of the content and
listings carry ``lfs: {sha256|oid, size, pointerSize}``; the others' ETag is the git blob sha1. Folder oids are
real git tree hashes. Point the client at ``hub.endpoint`` (``endpoint=`` or ``HfApi(endpoint=)``).

Endpoints (``{prefix}`` is empty for models and ``/datasets`` for datasets; ``{type}`` is ``models`` or
``datasets``; a revision is a branch name or a full commit sha, URL-quoted):

- ``HEAD|GET {prefix}/{repo_id}/resolve/{revision}/{path}``: the file's bytes, served directly (no redirect),
  with ``X-Repo-Commit``, ``ETag``, ``X-Linked-Etag`` / ``X-Linked-Size`` (LFS files), ``Content-Length``,
  ``Accept-Ranges: bytes``; ``Range: bytes=N-`` / ``N-M`` / ``-N`` answers 206 with ``Content-Range``.
- ``GET /api/{type}/{repo_id}`` and ``/api/{type}/{repo_id}/revision/{revision}``: repo info (``id``, ``sha``,
  ``siblings``, ``gated``, ``private``...); ``?blobs=true`` adds size, blob id and LFS data to the siblings,
  ``?expand=...`` keeps only the named properties.
- ``GET /api/{type}/{repo_id}/tree/{revision}[/{path}]``: ``recursive`` and ``expand`` queries, cursor
  pagination through a ``Link: <...>; rel="next"`` header (``tree_page_size`` entries a page).
- ``POST /api/{type}/{repo_id}/paths-info/{revision}`` (form ``paths=...``) and ``GET /api/{type}/{repo_id}/refs``.

Errors are the Hub's, so the client raises its own classes: 404 ``X-Error-Code: RepoNotFound`` /
``RevisionNotFound`` / ``EntryNotFound`` (the last with ``X-Repo-Commit``, which the client caches as
``.no_exist``); a gated repo's files answer 401 ``GatedRepo`` without ``Authorization: Bearer <token>`` and 403
``GatedRepo`` with another token, while its metadata (info, tree) stays public as on the Hub. No ``X-Xet-*``
header is ever sent, so the client always takes the plain HTTP download path.

Failure injection: ``drop_after`` (the next GETs of a file send only part of the body, then close the
connection), ``corrupt`` (GETs serve other bytes than the advertised ETag/size say); ``requests`` records what
the server saw. Imports nothing but the standard library.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import socketserver
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Final, NamedTuple, cast
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

__all__ = ["LFS_SUFFIXES", "LoopbackHub", "SeenRequest"]

LFS_SUFFIXES: Final = (".safetensors", ".bin", ".pt", ".parquet")
"""Files stored with LFS whatever their size (as ``.gitattributes`` of Hub repos usually says)."""

_REPO_TYPES: Final = {"model": "models", "dataset": "datasets"}
_PLURAL_TO_TYPE: Final = {plural: kind for kind, plural in _REPO_TYPES.items()}
_REPO_ID_RE: Final = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*")
_SHA_RE: Final = re.compile(r"[0-9a-f]{40}")
_RANGE_RE: Final = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)
_SAFE_SCAN: Final = {"status": "safe", "avScan": {"virusFound": False, "virusNames": None}, "pickleImportScan": None}


class SeenRequest(NamedTuple):
    """One request the server received: compares equal to the plain tuple ``(method, path, range, had_auth)``."""

    method: str
    path: str
    """URL path, unquoted, without the query string."""
    range: str | None
    """The ``Range`` header, if any."""
    had_auth: bool
    """Whether an ``Authorization`` header came (whatever its token)."""


@dataclass(frozen=True)
class _Blob:
    data: bytes
    lfs: bool
    sha256: str
    oid: str
    """Git blob oid of what git stores: the content, or the LFS pointer file."""
    pointer_size: int | None

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.oid

    @property
    def size(self) -> int:
        return len(self.data)

    @classmethod
    def make(cls, data: bytes, lfs: bool) -> _Blob:
        sha256 = hashlib.sha256(data).hexdigest()
        if not lfs:
            return cls(data, False, sha256, _git_oid(b"blob", data), None)
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(data)}\n".encode()
        return cls(data, True, sha256, _git_oid(b"blob", pointer), len(pointer))


@dataclass(frozen=True)
class _Commit:
    sha: str
    parent: str | None
    files: Mapping[str, _Blob]
    trees: Mapping[str, str]
    """Folder path (``""`` for the root) -> git tree oid."""
    title: str
    date: str


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    gated: bool
    created: str
    branches: dict[str, str]
    commits: dict[str, _Commit]


class _HubError(Exception):
    def __init__(self, status: int, code: str | None, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def _git_oid(kind: bytes, body: bytes) -> str:
    return hashlib.sha1(kind + b" %d\0" % len(body) + body).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _tree_oids(files: Mapping[str, _Blob]) -> dict[str, str]:
    """Git tree oid of every folder of ``files`` (``""`` is the root), as ``git write-tree`` would give."""
    children: dict[str, dict[str, tuple[bool, str]]] = {"": {}}  # folder -> name -> (is_dir, file path)
    for path in files:
        parts = path.split("/")
        for depth in range(len(parts)):
            folder = "/".join(parts[:depth])
            children.setdefault(folder, {})[parts[depth]] = (depth < len(parts) - 1, "/".join(parts[: depth + 1]))
    oids: dict[str, str] = {}

    def oid(folder: str) -> str:
        entries = []
        for name, (is_dir, full) in children[folder].items():
            if is_dir:
                entries.append((name + "/", b"40000 %s\0" % name.encode() + bytes.fromhex(oid(full))))
            else:
                entries.append((name, b"100644 %s\0" % name.encode() + bytes.fromhex(files[full].oid)))
        oids[folder] = _git_oid(b"tree", b"".join(e for _, e in sorted(entries, key=lambda x: x[0].encode())))
        return oids[folder]

    oid("")
    return oids


def _check_path(path: str) -> str:
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") for p in parts) or "\\" in path:
        raise ValueError(f"not a relative repo path: {path!r}")
    return path


def _truthy(query: Mapping[str, list[str]], key: str) -> bool:
    return any(v.lower() in ("1", "true") for v in query.get(key, []))


class LoopbackHub:
    """An in-memory Hugging Face Hub served on ``127.0.0.1`` (see the module docstring for the endpoints).

    Use it as a context manager (or ``start()`` / ``stop()``); ``endpoint`` is ``"http://127.0.0.1:PORT"``.
    Thread-safe: repos may be added and faults injected while the client downloads.
    """

    def __init__(self, token: str = "hf_loopback_token") -> None:
        self.token = token
        """The bearer token a gated repo's files require."""
        self.tree_page_size = 1000
        """Entries per page of a tree listing (the Hub's is 1000)."""
        self._lock = threading.Lock()
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._drops: dict[tuple[str, str, str], deque[int]] = {}
        self._corrupt: dict[tuple[str, str, str], bytes | None] = {}
        self._requests: list[SeenRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle ------------------------------------------------------------------------------------------

    def start(self) -> LoopbackHub:
        """Bind a free port on 127.0.0.1 and serve from a daemon thread (a no-op when already serving)."""
        if self._server is None:
            server = _Server(self)
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-hub", daemon=True
            )
            thread.start()
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (idempotent)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> LoopbackHub:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` (only while serving)."""
        if self._server is None:
            raise RuntimeError("LoopbackHub is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- content -------------------------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes | Path],
        *,
        repo_type: str = "model",
        revision: str = "main",
        gated: bool = False,
        lfs_threshold: int = 1024,
    ) -> str:
        """Commit ``files`` (the whole tree of the new commit) to branch ``revision`` of the repo; return its sha.

        The first call creates the repo; a later one makes a new commit whose parent is the branch's head (or
        ``main``'s for a new branch), so the branch moves and older commits stay reachable by sha. ``gated``
        applies to the whole repo (the last call wins). Files of ``lfs_threshold`` bytes or more, and
        ``*.safetensors`` / ``*.bin`` / ``*.pt`` / ``*.parquet`` files, are LFS files.
        """
        if repo_type not in _REPO_TYPES:
            raise ValueError(f"repo_type must be one of {sorted(_REPO_TYPES)}, not {repo_type!r}")
        if not _REPO_ID_RE.fullmatch(repo_id) or "--" in repo_id or ".." in repo_id:
            raise ValueError(f"not a Hub repo id: {repo_id!r}")
        if not revision or _SHA_RE.fullmatch(revision) or revision.strip("/") != revision:
            raise ValueError(f"not a branch name: {revision!r}")
        blobs: dict[str, _Blob] = {}
        for path, content in files.items():
            data = content.read_bytes() if isinstance(content, Path) else bytes(content)
            lfs = len(data) >= lfs_threshold or path.lower().endswith(LFS_SUFFIXES)
            blobs[_check_path(path)] = _Blob.make(data, lfs)
        clash = sorted(p for p in blobs for q in blobs if q.startswith(p + "/"))
        if clash:
            raise ValueError(f"a path is both a file and a folder: {clash[0]!r}")
        trees = _tree_oids(blobs)
        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
            if repo is None:
                repo = _Repo(repo_type, repo_id, gated, _now(), {}, {})
                self._repos[(repo_type, repo_id)] = repo
            repo.gated = gated
            parent = repo.branches.get(revision, repo.branches.get("main"))
            seed = "\n".join([repo_type, repo_id, trees[""], parent or ""])
            sha = hashlib.sha1(seed.encode()).hexdigest()
            if sha not in repo.commits:
                title = f"Commit {len(repo.commits) + 1} to {revision}"
                repo.commits[sha] = _Commit(sha, parent, dict(sorted(blobs.items())), trees, title, _now())
            repo.branches[revision] = sha
        return sha

    # --- failure injection and inspection -----------------------------------------------------------------

    def drop_after(self, repo_id: str, path: str, nbytes: int, times: int = 1, *, repo_type: str = "model") -> None:
        """The next ``times`` GETs of the file (any revision) send the headers and ``nbytes`` of the body, then
        close the connection. Calls queue up: ``drop_after(p, 100)`` then ``drop_after(p, 0, times=5)`` makes
        the first GET send 100 bytes and the five after it none."""
        if nbytes < 0 or times < 0:
            raise ValueError("nbytes and times must be >= 0")
        with self._lock:
            self._drops.setdefault((repo_type, repo_id, path), deque()).extend([nbytes] * times)

    def corrupt(self, repo_id: str, path: str, data: bytes | None = None, *, repo_type: str = "model") -> None:
        """From now on GETs of the file (any revision) serve ``data`` (default: every byte of the real content
        inverted, same size) while HEAD, ETag and sizes still describe the real content."""
        with self._lock:
            self._corrupt[(repo_type, repo_id, path)] = data

    def clear_faults(self) -> None:
        """Forget every pending ``drop_after`` and every ``corrupt``."""
        with self._lock:
            self._drops.clear()
            self._corrupt.clear()

    @property
    def requests(self) -> list[SeenRequest]:
        """A snapshot of the requests seen so far, oldest first (``SeenRequest`` tuples)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # --- request handling (called from the server's threads) ---------------------------------------------

    def _record(self, seen: SeenRequest) -> None:
        with self._lock:
            self._requests.append(seen)

    def _repo(self, repo_type: str, candidates: list[str]) -> _Repo:
        with self._lock:
            for repo_id in candidates:
                repo = self._repos.get((repo_type, repo_id))
                if repo is not None:
                    return repo
        raise _HubError(404, "RepoNotFound", "Repository not found")

    def _commit(self, repo: _Repo, revision: str) -> _Commit:
        with self._lock:
            sha = repo.branches.get(revision)
            if sha is None and revision in repo.commits:
                sha = revision
            if sha is None:
                raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return repo.commits[sha]

    def _check_gate(self, repo: _Repo, authorization: str | None) -> None:
        if not repo.gated or authorization == f"Bearer {self.token}":
            return
        kind = repo.repo_type
        if authorization is None:
            raise _HubError(
                401,
                "GatedRepo",
                f"Access to {kind} {repo.repo_id} is restricted. You must have access to it and be authenticated"
                " to access it. Please log in.",
            )
        raise _HubError(
            403,
            "GatedRepo",
            f"Access to {kind} {repo.repo_id} is restricted and you are not in the authorized list.",
        )

    def _faults(self, repo: _Repo, path: str) -> tuple[int | None, bool, bytes | None]:
        """(bytes to send before dropping or None, corrupted?, corrupt data) for one GET of the file."""
        key = (repo.repo_type, repo.repo_id, path)
        with self._lock:
            drops = self._drops.get(key)
            drop = drops.popleft() if drops else None
            return drop, key in self._corrupt, self._corrupt.get(key)

    def _info(self, repo: _Repo, commit: _Commit, query: Mapping[str, list[str]]) -> dict[str, Any]:
        blobs = _truthy(query, "blobs")
        siblings: list[dict[str, Any]] = []
        for path, blob in commit.files.items():
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=blob.size, blobId=blob.oid)
                if blob.lfs:
                    sibling["lfs"] = {"sha256": blob.sha256, "size": blob.size, "pointerSize": blob.pointer_size}
            siblings.append(sibling)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0] if "/" in repo.repo_id else None,
            "sha": commit.sha,
            "createdAt": repo.created,
            "lastModified": commit.date,
            "private": False,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(b.size for b in commit.files.values()),
        }
        if repo.repo_type == "model":
            info.update(modelId=repo.repo_id, library_name=None, pipeline_tag=None, spaces=[])
        expand = [v for value in query.get("expand", []) for v in value.split(",") if v]
        if expand:
            info = {k: v for k, v in info.items() if k in ("_id", "id", *expand)}
        return info

    def _last_commit(self, repo: _Repo, commit: _Commit, path: str, is_dir: bool) -> dict[str, str]:
        """The newest commit of the history of ``commit`` that changed ``path``."""
        with self._lock:
            current = commit
            while current.parent is not None:
                parent = repo.commits[current.parent]
                if is_dir:
                    same = parent.trees.get(path) == current.trees.get(path)
                else:
                    old, new = parent.files.get(path), current.files.get(path)
                    same = old is not None and new is not None and old.oid == new.oid
                if not same:
                    break
                current = parent
        return {"id": current.sha, "title": current.title, "date": current.date}

    def _entry(self, repo: _Repo, commit: _Commit, path: str, expand: bool) -> dict[str, Any]:
        entry: dict[str, Any]
        blob = commit.files.get(path)
        if blob is None:
            entry = {"type": "directory", "oid": commit.trees[path], "size": 0, "path": path}
        else:
            entry = {"type": "file", "oid": blob.oid, "size": blob.size, "path": path}
            if blob.lfs:
                entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": blob.pointer_size}
            if expand:
                entry["securityFileStatus"] = _SAFE_SCAN
        if expand:
            entry["lastCommit"] = self._last_commit(repo, commit, path, blob is None)
        return entry

    def _tree(self, repo: _Repo, commit: _Commit, folder: str, recursive: bool, expand: bool) -> list[dict[str, Any]]:
        """Entries under ``folder`` in ``git ls-tree [-r -t]`` order (a folder before its content)."""
        if folder and folder not in commit.trees:
            message = f"{folder} is a file, not a folder" if folder in commit.files else f"{folder} does not exist"
            raise _HubError(404, "EntryNotFound", message, {"X-Repo-Commit": commit.sha})
        children: dict[str, set[str]] = {}
        for path in [*commit.files, *commit.trees]:
            if path:
                children.setdefault(path.rpartition("/")[0], set()).add(path)

        def key(path: str) -> bytes:
            return (path.rpartition("/")[2] + ("/" if path in commit.trees else "")).encode()

        out: list[dict[str, Any]] = []

        def walk(parent: str) -> None:
            for path in sorted(children.get(parent, ()), key=key):
                out.append(self._entry(repo, commit, path, expand))
                if recursive and path in commit.trees:
                    walk(path)

        walk(folder)
        return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hub: LoopbackHub) -> None:
        self.hub = hub
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the host name (socket.getfqdn): skip the look-up.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, connection: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            (self._connections.add if alive else self._connections.discard)(connection)

    def close_connections(self) -> None:
        """Shut down the keep-alive connections still open, so their handler threads end."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection ends after this many seconds

    @property
    def hub(self) -> LoopbackHub:
        return cast(_Server, self.server).hub

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms to each response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cast(_Server, self.server).track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            cast(_Server, self.server).track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # --- plumbing ------------------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        authorization = self.headers.get("Authorization")
        self.hub._record(SeenRequest(method, unquote(url.path), self.headers.get("Range"), authorization is not None))
        segments = [unquote(s) for s in url.path.split("/")[1:]]
        try:
            if segments[:1] == ["api"]:
                self._api(method, segments[1:], parse_qs(url.query, keep_blank_values=True), body, url.path)
            else:
                self._resolve(method, segments, authorization)
        except _HubError as error:
            payload = json.dumps({"error": error.message}).encode()
            headers = {"Content-Type": "application/json; charset=utf-8", "X-Error-Message": error.message}
            if error.code is not None:
                headers["X-Error-Code"] = error.code
            self._send(error.status, {**headers, **error.headers}, payload, method)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send(self, status: int, headers: Mapping[str, str], payload: bytes, method: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)

    def _send_json(self, data: Any, method: str, headers: Mapping[str, str] | None = None) -> None:
        payload = json.dumps(data).encode()
        self._send(200, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, payload, method)

    @staticmethod
    def _split_repo(repo_type: str, segments: list[str], hub: LoopbackHub, marker: str | None) -> tuple[_Repo, list[str]]:
        """The repo named by the first one or two segments (``name`` or ``namespace/name``), and what follows."""
        widths = [2, 1]
        if marker is not None:  # the segment that ends the repo id (``resolve``): where it is decides
            widths = [w for w in (1, 2) if len(segments) > w and segments[w] == marker]
        candidates = ["/".join(segments[:w]) for w in widths if len(segments) >= w]
        repo = hub._repo(repo_type, candidates)
        return repo, segments[len(repo.repo_id.split("/")) :]

    # --- /{repo}/resolve/{revision}/{path} -------------------------------------------------------------------

    def _resolve(self, method: str, segments: list[str], authorization: str | None) -> None:
        repo_type = "model"
        if segments[:1] == ["datasets"]:
            repo_type, segments = "dataset", segments[1:]
        if "resolve" not in segments[1:3] or method not in ("GET", "HEAD"):
            raise _HubError(404, None, "Not found")
        hub = self.hub
        repo, rest = self._split_repo(repo_type, segments, hub, "resolve")
        hub._check_gate(repo, authorization)
        if len(rest) < 3 or not rest[1]:
            raise _HubError(404, None, "Not found")
        commit = hub._commit(repo, rest[1])
        path = "/".join(rest[2:])
        blob = commit.files.get(path)
        if blob is None:
            raise _HubError(404, "EntryNotFound", f"{path} does not exist on \"{rest[1]}\"", {"X-Repo-Commit": commit.sha})
        headers = {
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
            "ETag": f'"{blob.etag}"',
            "X-Repo-Commit": commit.sha,
        }
        if blob.lfs:
            headers.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(blob.size)})
        if method == "HEAD":
            self._send(200, headers, blob.data, "HEAD")
            return
        drop, corrupted, corrupt_data = hub._faults(repo, path)
        data = blob.data
        if corrupted:
            data = corrupt_data if corrupt_data is not None else bytes(b ^ 0xFF for b in data)
        status, start, end = 200, 0, len(data)
        range_header = self.headers.get("Range")
        match = _RANGE_RE.fullmatch(range_header) if range_header else None
        if match is not None:
            first, last = match.groups()
            if first:
                start, end = int(first), (min(int(last) + 1, len(data)) if last else len(data))
            elif last:
                start = max(len(data) - int(last), 0)
            if start >= len(data) or start >= end or not (first or last):
                raise _HubError(416, None, "Requested range not satisfiable", {"Content-Range": f"bytes */{len(data)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        payload = data[start:end]
        if drop is None:
            self._send(status, headers, payload, "GET")
            return
        # Advertise the whole body, send part of it, hang up: the client sees a truncated response.
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload[:drop])
        self.wfile.flush()
        self.close_connection = True

    # --- /api/... ----------------------------------------------------------------------------------------

    def _api(self, method: str, segments: list[str], query: dict[str, list[str]], body: bytes, raw_path: str) -> None:
        if len(segments) < 2 or segments[0] not in _PLURAL_TO_TYPE:
            raise _HubError(404, None, "Not found")
        hub = self.hub
        repo, rest = self._split_repo(_PLURAL_TO_TYPE[segments[0]], segments[1:], hub, None)
        if method == "GET" and rest in ([], [""]):
            self._send_json(hub._info(repo, hub._commit(repo, "main"), query), method)
        elif method == "GET" and len(rest) == 2 and rest[0] == "revision":
            self._send_json(hub._info(repo, hub._commit(repo, rest[1]), query), method)
        elif method == "GET" and len(rest) >= 2 and rest[0] == "tree":
            commit = hub._commit(repo, rest[1])
            folder = "/".join(rest[2:]).strip("/")
            expand = _truthy(query, "expand")
            entries = hub._tree(repo, commit, folder, _truthy(query, "recursive"), expand)
            offset = int((query.get("cursor") or ["0"])[0] or 0)
            size = max(hub.tree_page_size, 1)
            headers = {}
            if offset + size < len(entries):
                params = {k: v[-1] for k, v in query.items() if k != "cursor"} | {"cursor": str(offset + size)}
                headers["Link"] = f'<{hub.endpoint}{raw_path}?{urlencode(params)}>; rel="next"'
            self._send_json(entries[offset : offset + size], method, headers)
        elif method == "POST" and len(rest) == 2 and rest[0] == "paths-info":
            commit = hub._commit(repo, rest[1])
            form = parse_qs(body.decode(), keep_blank_values=True)
            expand = _truthy(form, "expand")
            paths = [p.strip("/") for p in form.get("paths", [])]
            found = [p for p in paths if p in commit.files or (p and p in commit.trees)]
            self._send_json([hub._entry(repo, commit, p, expand) for p in found], method)
        elif method == "GET" and rest == ["refs"]:
            with hub._lock:
                branches = [
                    {"name": name, "ref": f"refs/heads/{name}", "targetCommit": sha}
                    for name, sha in sorted(repo.branches.items())
                ]
            self._send_json({"branches": branches, "converts": [], "tags": [], "pullRequests": []}, method)
        else:
            raise _HubError(404, None, "Not found")
