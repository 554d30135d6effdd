"""``registry_core._loopback_hub``: the real ``huggingface_hub`` client downloading from the loopback Hub.

Every test passes ``cache_dir=`` and ``endpoint=`` (and ``token=``) per call: ``huggingface_hub`` reads its
environment variables (``HF_ENDPOINT``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``...) once, at import, into
``huggingface_hub.constants``; the settings that matter are pinned here on ``constants`` for each test.
"""

from __future__ import annotations

import hashlib
import http.client
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytest.importorskip("huggingface_hub", minversion="1.0")  # the httpx2 client (0.x used requests)
import httpx2
from huggingface_hub import (
    HfApi,
    RepoFile,
    constants,
    file_download,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    snapshot_download,
)
from huggingface_hub.errors import (
    GatedRepoError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from registry_core._loopback_hub import LoopbackHub

WEIGHTS = bytes(range(256)) * 8  # 2 KiB: an LFS file by size and by suffix
CONFIG = b'{"hidden": 8}\n'  # a plain git file


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def _client_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the environment could have set at import, fixed per test on the module the client reads per call."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_SYMLINKS", False)
    # With telemetry on, the first request of a process asks https://huggingface.co/api/agent-harnesses
    # (up to 3 s) to fill the User-Agent: never leave the machine.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)


@pytest.fixture
def hub() -> Iterator[LoopbackHub]:
    with LoopbackHub() as running:
        yield running


def download(hub: LoopbackHub, cache: Path, repo_id: str, filename: str, **kwargs: Any) -> Path:
    kwargs.setdefault("token", False)  # not HF_TOKEN of whoever runs the tests
    return Path(hf_hub_download(repo_id, filename, cache_dir=cache, endpoint=hub.endpoint, **kwargs))


def api(hub: LoopbackHub) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=False)


def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Skip (and record) the client's 1 s pause before it retries a broken download."""
    slept: list[float] = []

    class _Time:
        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            slept.append(seconds)

    monkeypatch.setattr(file_download, "time", _Time())
    return slept


def test_small_and_lfs_files_land_in_the_cache_layout(hub: LoopbackHub, tmp_path: Path) -> None:
    sha = hub.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS, "README.md": b"# t\n"})
    repo_dir = tmp_path / "models--org--tiny"
    for name, data, blob in [("config.json", CONFIG, git_sha1(CONFIG)), ("model.safetensors", WEIGHTS, sha256(WEIGHTS))]:
        path = download(hub, tmp_path, "org/tiny", name)
        assert path == repo_dir / "snapshots" / sha / name
        assert path.read_bytes() == data
        assert path.resolve() == (repo_dir / "blobs" / blob).resolve()  # blobs are named by their ETag
    assert (repo_dir / "refs" / "main").read_text() == sha
    assert hub.requests == [
        ("HEAD", "/org/tiny/resolve/main/config.json", None, False),
        ("GET", "/org/tiny/resolve/main/config.json", None, False),
        ("HEAD", "/org/tiny/resolve/main/model.safetensors", None, False),
        ("GET", "/org/tiny/resolve/main/model.safetensors", None, False),
    ]


def test_file_metadata_carries_the_hub_headers(hub: LoopbackHub) -> None:
    sha = hub.add_repo(
        "org/m",
        {"hello.txt": b"hello\n", "big.txt": b"x" * 1024, "tiny.bin": b"abc", "model.safetensors": WEIGHTS},
    )
    meta = {
        name: get_hf_file_metadata(hf_hub_url("org/m", name, endpoint=hub.endpoint), token=False)
        for name in ("hello.txt", "big.txt", "tiny.bin", "model.safetensors")
    }
    assert meta["hello.txt"].etag == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object` of it
    assert meta["big.txt"].etag == sha256(b"x" * 1024)  # 1024 bytes: at the LFS threshold
    assert meta["tiny.bin"].etag == sha256(b"abc")  # *.bin: LFS whatever its size
    assert meta["model.safetensors"].etag == sha256(WEIGHTS)
    assert {m.commit_hash for m in meta.values()} == {sha}
    assert [m.size for m in meta.values()] == [6, 1024, 3, len(WEIGHTS)]
    assert all(m.xet_file_data is None for m in meta.values())  # no X-Xet-* header: the plain HTTP path


def test_raw_http_ranges_and_headers(hub: LoopbackHub) -> None:
    sha = hub.add_repo("org/m", {"model.safetensors": WEIGHTS})
    size = len(WEIGHTS)
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(hub.endpoint).port, timeout=5)
    try:

        def get(method: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
            conn.request(method, "/org/m/resolve/main/model.safetensors", headers=headers)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()

        status, headers, body = get("HEAD", {})
        assert (status, body) == (200, b"")
        assert headers["content-length"] == headers["x-linked-size"] == str(size)
        assert headers["etag"] == headers["x-linked-etag"] == f'"{sha256(WEIGHTS)}"'
        assert (headers["x-repo-commit"], headers["accept-ranges"]) == (sha, "bytes")
        assert not [name for name in headers if name.startswith("x-xet")]
        for spec, part in [("bytes=10-", WEIGHTS[10:]), ("bytes=0-9", WEIGHTS[:10]), ("bytes=-5", WEIGHTS[-5:])]:
            status, headers, body = get("GET", {"Range": spec})
            start = size - len(part) if spec.startswith("bytes=-") else int(spec[6:].split("-")[0])
            assert (status, body) == (206, part)
            assert headers["content-range"] == f"bytes {start}-{start + len(part) - 1}/{size}"
        status, headers, _ = get("GET", {"Range": f"bytes={size}-"})
        assert (status, headers["content-range"]) == (416, f"bytes */{size}")
    finally:
        conn.close()


def test_download_by_commit_sha_then_from_the_cache_alone(hub: LoopbackHub, tmp_path: Path) -> None:
    old = hub.add_repo("org/m", {"config.json": b"v1"})
    new = hub.add_repo("org/m", {"config.json": b"v2"})
    path = download(hub, tmp_path, "org/m", "config.json", revision=old)
    assert (path.read_bytes(), path.parent.name) == (b"v1", old)
    hub.clear_requests()
    assert download(hub, tmp_path, "org/m", "config.json", revision=old) == path
    assert hub.requests == []  # a commit sha already cached: no request at all
    latest = download(hub, tmp_path, "org/m", "config.json")
    assert (latest.read_bytes(), latest.parent.name) == (b"v2", new)


def test_branches_with_a_slash_and_repo_ids_without_a_namespace(hub: LoopbackHub, tmp_path: Path) -> None:
    main = hub.add_repo("gpt2", {"config.json": b"main"})
    feature = hub.add_repo("gpt2", {"config.json": b"feature"}, revision="feature/x")
    assert download(hub, tmp_path, "gpt2", "config.json").read_bytes() == b"main"
    path = download(hub, tmp_path, "gpt2", "config.json", revision="feature/x")
    assert (path.read_bytes(), path.parent.name) == (b"feature", feature)
    refs = api(hub).list_repo_refs("gpt2")
    assert {(b.name, b.target_commit) for b in refs.branches} == {("main", main), ("feature/x", feature)}
    assert api(hub).model_info("gpt2", revision="feature/x").sha == feature


def test_model_info_and_dataset_info(hub: LoopbackHub) -> None:
    model_sha = hub.add_repo("org/model", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    dataset_sha = hub.add_repo("org/data", {"README.md": b"# d\n", "data/train.parquet": b"PAR1"}, repo_type="dataset")
    client = api(hub)

    info = client.model_info("org/model")
    assert (info.id, info.sha, info.private, info.gated) == ("org/model", model_sha, False, False)
    assert [(s.rfilename, s.size, s.lfs) for s in info.siblings or []] == [
        ("config.json", None, None),
        ("model.safetensors", None, None),
    ]
    detailed = {s.rfilename: s for s in client.model_info("org/model", files_metadata=True).siblings or []}
    assert (detailed["config.json"].size, detailed["config.json"].blob_id) == (len(CONFIG), git_sha1(CONFIG))
    assert detailed["config.json"].lfs is None
    lfs = detailed["model.safetensors"].lfs
    assert lfs is not None and (lfs.sha256, lfs.size) == (sha256(WEIGHTS), len(WEIGHTS))
    assert client.model_info("org/model", revision=model_sha).sha == model_sha

    data = client.dataset_info("org/data")
    assert (data.id, data.sha) == ("org/data", dataset_sha)
    assert [s.rfilename for s in data.siblings or []] == ["README.md", "data/train.parquet"]
    assert client.repo_info("org/data", repo_type="dataset").sha == dataset_sha
    with pytest.raises(RepositoryNotFoundError):
        client.model_info("org/data")  # a dataset is not a model


def test_list_repo_files_of_a_dataset_with_nested_paths(hub: LoopbackHub, tmp_path: Path) -> None:
    files = {
        "README.md": b"# d\n",
        "data/train-00000-of-00002.parquet": b"PAR1 zero",
        "data/train-00001-of-00002.parquet": b"PAR1 one",
        "data/validation/part-0.parquet": b"PAR1 val",
    }
    sha = hub.add_repo("org/data", files, repo_type="dataset")
    client = api(hub)
    assert client.list_repo_files("org/data", repo_type="dataset") == list(files)
    top = list(client.list_repo_tree("org/data", repo_type="dataset"))
    assert [(type(e).__name__, e.path) for e in top] == [("RepoFile", "README.md"), ("RepoFolder", "data")]
    under = list(client.list_repo_tree("org/data", path_in_repo="data", repo_type="dataset", revision=sha))
    assert [e.path for e in under] == [*list(files)[1:3], "data/validation"]
    first = under[0]
    assert isinstance(first, RepoFile) and first.lfs is not None
    assert (first.lfs.sha256, first.size) == (sha256(files[first.path]), len(files[first.path]))

    hub.tree_page_size = 2  # 6 entries, recursive: 3 pages linked by `Link: <...>; rel="next"`
    hub.clear_requests()
    assert client.list_repo_files("org/data", repo_type="dataset") == list(files)
    assert [r.path for r in hub.requests] == ["/api/datasets/org/data/tree/main"] * 3

    path = download(hub, tmp_path, "org/data", "data/train-00000-of-00002.parquet", repo_type="dataset")
    assert path == tmp_path / "datasets--org--data" / "snapshots" / sha / "data" / "train-00000-of-00002.parquet"
    assert path.read_bytes() == b"PAR1 zero"


def test_snapshot_download_fetches_the_whole_tree(hub: LoopbackHub, tmp_path: Path) -> None:
    files = {"config.json": CONFIG, "model.safetensors": WEIGHTS, "tokenizer/vocab.txt": b"a\nb\n"}
    sha = hub.add_repo("org/m", files)
    folder = Path(snapshot_download("org/m", cache_dir=tmp_path, endpoint=hub.endpoint, token=False))
    assert folder == tmp_path / "models--org--m" / "snapshots" / sha
    assert {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == files
    seen = [(r.method, r.path) for r in hub.requests]
    assert seen[:2] == [("GET", "/api/models/org/m/revision/main"), ("GET", f"/api/models/org/m/tree/{sha}")]
    assert sorted(seen[2:]) == sorted((m, f"/org/m/resolve/{sha}/{name}") for name in files for m in ("GET", "HEAD"))


def test_a_new_upstream_commit_is_seen_on_the_next_download_of_main(hub: LoopbackHub, tmp_path: Path) -> None:
    first = hub.add_repo("org/m", {"config.json": b'{"v": 1}'})
    old = download(hub, tmp_path, "org/m", "config.json")
    second = hub.add_repo("org/m", {"config.json": b'{"v": 2}'})
    assert second != first
    new = download(hub, tmp_path, "org/m", "config.json")
    assert (new.read_bytes(), new.parent.name) == (b'{"v": 2}', second)
    assert old.read_bytes() == b'{"v": 1}'  # the old snapshot stays in the cache
    assert (tmp_path / "models--org--m" / "refs" / "main").read_text() == second
    assert api(hub).model_info("org/m", revision=first).sha == first  # and upstream, by its sha


def test_a_dropped_connection_is_resumed_with_a_range_request_in_the_same_call(
    hub: LoopbackHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client retries a broken body itself (up to 5 times, 1 s apart), asking for what it lacks with
    ``Range``, but it writes (so can resume from) whole 10 MiB chunks only: a break in the first chunk
    restarts from byte 0. Hence a file a little over one chunk, broken past it."""
    chunk = constants.DOWNLOAD_CHUNK_SIZE
    data = bytes(range(256)) * ((chunk + (512 << 10)) // 256)
    hub.add_repo("org/big", {"model.safetensors": data})
    hub.drop_after("org/big", "model.safetensors", chunk + 1000)
    slept = no_sleep(monkeypatch)
    assert download(hub, tmp_path, "org/big", "model.safetensors").read_bytes() == data
    assert [r.range for r in hub.requests if r.method == "GET"] == [None, f"bytes={chunk}-"]
    assert slept == [1]


def test_a_download_that_keeps_breaking_raises_and_the_next_call_starts_over(
    hub: LoopbackHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six broken GETs in a row (the first try and 5 retries without progress) make the call raise httpx2's
    own error; the partial file is deleted, so the next call downloads from byte 0, without ``Range``."""
    hub.add_repo("org/m", {"model.safetensors": WEIGHTS})
    hub.drop_after("org/m", "model.safetensors", 1000)
    hub.drop_after("org/m", "model.safetensors", 0, times=5)
    slept = no_sleep(monkeypatch)
    with pytest.raises(httpx2.RemoteProtocolError, match="peer closed connection"):
        download(hub, tmp_path, "org/m", "model.safetensors")
    assert [(r.method, r.range) for r in hub.requests] == [("HEAD", None)] + [("GET", None)] * 6
    assert slept == [1] * 5
    assert list((tmp_path / "models--org--m" / "blobs").iterdir()) == []  # nothing partial left behind

    hub.clear_requests()
    assert download(hub, tmp_path, "org/m", "model.safetensors").read_bytes() == WEIGHTS
    assert [(r.method, r.range) for r in hub.requests] == [("HEAD", None), ("GET", None)]


def test_missing_repo_revision_and_file_raise_the_client_errors(hub: LoopbackHub, tmp_path: Path) -> None:
    sha = hub.add_repo("org/m", {"config.json": CONFIG})
    with pytest.raises(RepositoryNotFoundError) as missing_repo:
        download(hub, tmp_path, "org/nothing", "config.json")
    assert not isinstance(missing_repo.value, GatedRepoError)
    assert missing_repo.value.response.status_code == 404
    with pytest.raises(RevisionNotFoundError):
        download(hub, tmp_path, "org/m", "config.json", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        download(hub, tmp_path, "org/m", "config.json", revision="0" * 40)
    with pytest.raises(RemoteEntryNotFoundError):
        download(hub, tmp_path, "org/m", "missing.json")
    # the 404 names the commit (X-Repo-Commit): the client remembers the absence under it
    assert (tmp_path / "models--org--m" / ".no_exist" / sha / "missing.json").is_file()

    client = api(hub)
    with pytest.raises(RepositoryNotFoundError):
        client.model_info("org/nothing")
    with pytest.raises(RepositoryNotFoundError):
        client.dataset_info("org/m")
    with pytest.raises(RevisionNotFoundError):
        client.model_info("org/m", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        client.list_repo_files("org/m", revision="no-such-branch")
    with pytest.raises(RemoteEntryNotFoundError):
        list(client.list_repo_tree("org/m", path_in_repo="no/such/folder"))


def test_a_gated_repo_needs_the_token(hub: LoopbackHub, tmp_path: Path) -> None:
    hub.add_repo("org/gated", {"model.safetensors": WEIGHTS}, gated=True)
    with pytest.raises(GatedRepoError) as anonymous:
        download(hub, tmp_path, "org/gated", "model.safetensors")
    assert anonymous.value.response.status_code == 401
    with pytest.raises(GatedRepoError) as wrong:
        download(hub, tmp_path, "org/gated", "model.safetensors", token="hf_not_the_token")
    assert wrong.value.response.status_code == 403
    path = download(hub, tmp_path, "org/gated", "model.safetensors", token=hub.token)
    assert path.read_bytes() == WEIGHTS
    assert [(r.method, r.had_auth) for r in hub.requests] == [
        ("HEAD", False),
        ("HEAD", True),
        ("HEAD", True),
        ("GET", True),
    ]
    info = api(hub).model_info("org/gated")  # as on the Hub, a gated repo's metadata is public
    assert (info.gated, [s.rfilename for s in info.siblings or []]) == ("manual", ["model.safetensors"])


def test_offline_mode_reads_the_cache_and_refuses_the_rest(
    hub: LoopbackHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``HF_HUB_OFFLINE`` is read at import; in-process it is ``constants.HF_HUB_OFFLINE``, checked on every
    request (per call, ``local_files_only=True`` does the same for one download)."""
    hub.add_repo("org/m", {"config.json": CONFIG, "other.json": b"[]"})
    cached = download(hub, tmp_path, "org/m", "config.json")
    hub.clear_requests()
    assert download(hub, tmp_path, "org/m", "config.json", local_files_only=True) == cached
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert download(hub, tmp_path, "org/m", "config.json") == cached
    with pytest.raises(LocalEntryNotFoundError) as uncached:
        download(hub, tmp_path, "org/m", "other.json")
    assert isinstance(uncached.value.__cause__, OfflineModeIsEnabled)
    with pytest.raises(OfflineModeIsEnabled):
        api(hub).model_info("org/m")
    assert hub.requests == []


def test_corrupt_bytes_of_the_right_size_are_not_detected_by_the_download(hub: LoopbackHub, tmp_path: Path) -> None:
    """huggingface_hub 2.4 checks a plain-HTTP download's size only, never its sha256 (LFS) or git sha1:
    wrong bytes of the right size land in the cache under the advertised ETag. ``verify_repo_checksums``
    finds them, on demand; bytes of another size fail the download's consistency check."""
    hub.add_repo("org/m", {"config.json": CONFIG, "model.safetensors": WEIGHTS, "other.bin": WEIGHTS[:100]})
    hub.corrupt("org/m", "config.json")
    hub.corrupt("org/m", "model.safetensors")
    for name, data, etag in [("config.json", CONFIG, git_sha1(CONFIG)), ("model.safetensors", WEIGHTS, sha256(WEIGHTS))]:
        path = download(hub, tmp_path, "org/m", name)
        assert len(path.read_bytes()) == len(data) and path.read_bytes() != data
        assert path.resolve().name == etag
    report = api(hub).verify_repo_checksums("org/m", cache_dir=tmp_path)
    assert sorted(m["path"] for m in report.mismatches) == ["config.json", "model.safetensors"]

    hub.corrupt("org/m", "other.bin", b"short")
    with pytest.raises(OSError, match="Consistency check failed"):
        download(hub, tmp_path, "org/m", "other.bin")
    assert not (tmp_path / "models--org--m" / "blobs" / sha256(WEIGHTS[:100])).exists()


def test_commits_are_deterministic_and_inputs_checked() -> None:
    files = {"a.txt": b"a", "w/model.safetensors": WEIGHTS}
    with LoopbackHub() as one, LoopbackHub() as two:
        first = one.add_repo("org/m", files)
        assert two.add_repo("org/m", files) == first
        assert one.add_repo("org/other", files) != first  # the repo id is part of it
        assert one.add_repo("org/m", files) != first  # so is the parent
        assert one.add_repo("org/m", {**files, "a.txt": b"b"}, revision="dev") != first
        for bad in [{"../x": b""}, {"/x": b""}, {"a//b": b""}]:
            with pytest.raises(ValueError, match="relative repo path"):
                one.add_repo("org/m", bad)
        with pytest.raises(ValueError, match="both a file and a folder"):
            one.add_repo("org/m", {"a": b"", "a/b": b""})
        with pytest.raises(ValueError, match="repo_type"):
            one.add_repo("org/m", files, repo_type="space")
        with pytest.raises(ValueError, match="repo id"):
            one.add_repo("a/b/c", files)
        endpoint = one.endpoint
    with pytest.raises(RuntimeError, match="not started"):
        _ = one.endpoint
    with pytest.raises(OSError):  # stopped: nothing listens any more
        http.client.HTTPConnection("127.0.0.1", urlsplit(endpoint).port, timeout=2).connect()
