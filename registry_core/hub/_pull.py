"""``pull``: hub files into huggingface_hub's cache, each checked against its published sha256."""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from registry_core._errors import NotFoundError, RegistryCoreError
from registry_core._spec import Card
from registry_core._suggestions import close_matches
from registry_core.atomic import sha256_file

if TYPE_CHECKING:
    from registry_core._registry import Registry
    from registry_core._spec import ComponentSpec

__all__ = ["HubError", "Pulled", "PulledFile", "cache_dir", "cached", "endpoint", "find_cards", "is_offline", "pull",
           "pull_card", "pull_matching", "resolve_files"]

DEFAULT_ENDPOINT: Final = "https://huggingface.co"
_TRUE: Final = ("1", "true", "yes", "on")


class HubError(RegistryCoreError):
    """A hub file could not be had: the repo, revision or file is unknown, gated, unreachable, not cached while
    offline, or not what its card says. The message names the repo and file and what to do."""


@dataclass(frozen=True)
class PulledFile:
    """One file of a pull: its name in the repo, where it is in the cache, its size and sha256."""

    name: str
    path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class Pulled:
    """What a pull found: the repo at a commit and its files in the cache."""

    repo: str
    repo_type: str
    revision: str
    commit: str
    endpoint: str
    files: tuple[PulledFile, ...]

    def path(self, name: str) -> Path:
        """The cached file of ``name`` (one of the pulled files)."""
        for f in self.files:
            if f.name == name:
                return f.path
        raise KeyError(f"{name!r} was not pulled from {self.repo}; pulled: {', '.join(f.name for f in self.files)}")

    @property
    def folder(self) -> Path:
        """The snapshot folder of the commit: the pulled files sit under it at their repo paths."""
        first = self.files[0]
        return first.path.parents[len(Path(first.name).parts) - 1]

    def as_dict(self) -> dict[str, Any]:
        """The record ``pull --json`` prints and a run's lock keeps."""
        return {"repo": self.repo, "repo_type": self.repo_type, "revision": self.revision, "commit": self.commit,
                "endpoint": self.endpoint,
                "files": [{"name": f.name, "path": str(f.path), "size": f.size, "sha256": f.sha256} for f in self.files]}


def endpoint() -> str:
    """The hub the client talks to: ``HF_ENDPOINT``, else huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def cache_dir() -> Path:
    """Where pulled files are kept: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def is_offline() -> bool:
    """``HF_HUB_OFFLINE`` is set: only the cache is read."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def cached(repo: str, name: str, *, revision: str = "main", repo_type: str = "model") -> Path | None:
    """The cached file ``name`` of ``repo`` at ``revision`` when huggingface_hub's cache holds it, else None; never
    touches the network (composition reads a pulled tokenizer's vocabulary size so)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo, name, cache_dir=cache_dir(), revision=revision, repo_type=repo_type)
    return Path(found) if isinstance(found, str) else None


def _commit_of(path: Path, name: str) -> str:
    """The commit a cached file belongs to: the snapshot folder above it (``snapshots/<commit>/<name>``)."""
    return path.parents[len(Path(name).parts) - 1].name


def _explain(exc: BaseException, repo: str, name: str, revision: str, repo_type: str, card: str | None) -> HubError:
    """One sentence for a failure of huggingface_hub, naming the repo and file and what to do."""
    from huggingface_hub import errors

    where, kind = endpoint(), "dataset repo" if repo_type == "dataset" else "hub repo"
    fetch = f"python -m registry_core pull {card}" if card else "a pull with network access"
    if isinstance(exc, errors.GatedRepoError):
        return HubError(f"{kind} {repo} at {where} is gated: accept its terms on its page and set HF_TOKEN to a "
                        "token of that account (or log in with `hf auth login`)")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return HubError(f"{kind} {repo} was not found at {where}: check the name (a private repo also needs HF_TOKEN)")
    if isinstance(exc, errors.RevisionNotFoundError):
        return HubError(f"revision {revision!r} of {kind} {repo} was not found at {where}: name a branch, tag or "
                        "commit the repo has")
    if isinstance(exc, errors.RemoteEntryNotFoundError):
        return HubError(f"{kind} {repo} has no file {name!r} at revision {revision!r} ({where})")
    if isinstance(exc, errors.LocalEntryNotFoundError):
        if is_offline():
            return HubError(f"HF_HUB_OFFLINE is set and {name!r} of {kind} {repo} (revision {revision!r}) is not in "
                            f"the cache {cache_dir()}: run {fetch} first, then work offline")
        return HubError(f"cannot reach the hub at {where} to get {name!r} of {kind} {repo}, and the cache "
                        f"{cache_dir()} does not hold it: check the network or HF_ENDPOINT, or run {fetch} where "
                        "there is network and set HF_HUB_OFFLINE=1 to use the cache")
    if isinstance(exc, errors.HfHubHTTPError):
        return HubError(f"the hub at {where} refused {name!r} of {kind} {repo}: {' '.join(str(exc).split())}")
    return HubError(f"{name!r} of {kind} {repo} could not be pulled from {where}: {type(exc).__name__}: "
                    f"{' '.join(str(exc).split())}")


def _hub_sha256(path: Path) -> str | None:
    """The sha256 the hub gave a cached LFS file: the cache names a file's blob by its ETag, which for LFS files
    (weights, parquet) is their sha256 (None for small git files, or a cache without links)."""
    blob = Path(os.path.realpath(path)).name
    return blob if len(blob) == 64 and all(c in "0123456789abcdef" for c in blob) else None


def _checked(path: Path, card_sha: str | None, card: str | None) -> tuple[str, str, str]:
    """``(sha256 of the file, what it must be, who says so)``: the card's hash, else the hub's own for LFS files
    (huggingface_hub checks only sizes), else the file's own (nothing to check)."""
    digest = sha256_file(path)
    if card_sha is not None:
        return digest, card_sha, f"{'card ' + card if card else 'the caller'} expects"
    hub = _hub_sha256(path)
    return digest, hub or digest, "the hub's sha256 (its ETag) is"


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether the hub's host takes a TCP connection within ``timeout`` seconds (True behind a proxy: the proxy
    decides). The client retries a refused connection for about 23 s before it says so; this says it at once."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return True
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _client() -> Any:
    """huggingface_hub's module, or a HubError saying how to install it."""
    try:
        import huggingface_hub
    except ImportError:
        raise HubError("pulling from a model hub needs huggingface_hub: pip install 'registry-core[hub]'") from None
    return huggingface_hub


def _download(repo: str, name: str, revision: str, repo_type: str, *, force: bool, card: str | None,
              local_only: bool = False) -> Path:
    hf_hub_download = _client().hf_hub_download

    try:
        path = hf_hub_download(repo, name, revision=revision, repo_type=repo_type, cache_dir=cache_dir(),
                               endpoint=endpoint(), token=os.environ.get("HF_TOKEN") or None,
                               local_files_only=local_only or is_offline(), force_download=force)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # every client failure becomes one sentence naming the repo and file
        raise _explain(exc, repo, name, revision, repo_type, card) from exc
    return Path(str(path))


def pull(repo: str, files: Sequence[str], *, revision: str = "main", repo_type: str = "model",
         sha256: Mapping[str, str] | None = None, card: str | None = None) -> Pulled:
    """Each of ``files`` of hub repo ``repo`` at ``revision``, from the cache or the hub (resuming a download a
    dropped connection cut short). A file whose sha256 differs from ``sha256[name]`` is fetched once more and
    then refused. ``card`` names the card being pulled, for the messages."""
    if not files:
        raise HubError(f"nothing to pull from {repo}: name at least one file")
    expected = {k: v.lower() for k, v in (sha256 or {}).items()}
    cached_only = not is_offline() and not _reachable(endpoint())  # then the cache, as offline, or a clear error
    pulled: list[PulledFile] = []
    for name in files:
        path = _download(repo, name, revision, repo_type, force=False, card=card, local_only=cached_only)
        digest, want, said = _checked(path, expected.get(name), card)
        if digest != want and not is_offline() and not cached_only:
            path = _download(repo, name, revision, repo_type, force=True, card=card)  # a damaged cache copy
            digest, want, said = _checked(path, expected.get(name), card)
        if digest != want:
            raise HubError(f"{name!r} of {repo} (commit {_commit_of(path, name)}) has sha256 {digest}, but {said} "
                           f"{want}: refused, not used (pull it again; if it persists, the hub serves other bytes)")
        pulled.append(PulledFile(name, path, path.stat().st_size, digest))
    commits = {_commit_of(f.path, f.name) for f in pulled}
    if cached_only:
        warnings.warn(f"the hub at {endpoint()} cannot be reached: using the cached {repo} (commit "
                      f"{', '.join(sorted(commits))}), which may be behind {revision!r}; set HF_HUB_OFFLINE=1 to work "
                      "from the cache on purpose", stacklevel=2)
    if len(commits) != 1:
        raise HubError(f"the files of {repo} at {revision!r} came from different commits ({', '.join(sorted(commits))})"
                       f": the branch moved during the pull; pull again")
    return Pulled(repo, repo_type, revision, commits.pop(), endpoint(), tuple(pulled))


def is_pattern(name: str) -> bool:
    """Whether a file name is a glob pattern (``data/train-*.parquet``): the hub's parquet names carry hashes."""
    return any(c in name for c in "*?[")


def _cached_listing(repo: str, revision: str, repo_type: str) -> tuple[str, list[tuple[str, int]]] | None:
    """The commit ``revision`` pointed at when the cache last saw it, and the files the cache holds from it."""
    folder = cache_dir() / f"{repo_type}s--{repo.replace('/', '--')}"
    ref = folder / "refs" / revision
    commit = ref.read_text().strip() if ref.is_file() else revision
    snapshot = folder / "snapshots" / commit
    if not snapshot.is_dir():
        return None
    files = sorted(p for p in snapshot.rglob("*") if p.is_file())
    return commit, [(str(p.relative_to(snapshot)), p.stat().st_size) for p in files]


def resolve_files(repo: str, patterns: Sequence[str], *, revision: str = "main",
                  repo_type: str = "model") -> tuple[str, list[tuple[str, int]]]:
    """The commit of ``revision`` and the ``(name, size)`` of each repo file matching ``patterns`` (glob patterns
    or plain names), in pattern order, names sorted within a pattern. Offline (or with the hub unreachable) the
    cache's copy of that commit is listed instead."""
    import fnmatch

    listing: tuple[str, list[tuple[str, int]]] | None = None
    where, kind = endpoint(), "dataset repo" if repo_type == "dataset" else "hub repo"
    if not is_offline() and _reachable(where):
        api = _client().HfApi(endpoint=where, token=os.environ.get("HF_TOKEN") or None)
        try:
            info = api.repo_info(repo, repo_type=repo_type, revision=revision, files_metadata=True)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # the client's own error classes become one sentence
            raise _explain(exc, repo, "(the file list)", revision, repo_type, None) from exc
        listing = (str(info.sha), [(s.rfilename, int(s.size or 0)) for s in info.siblings or []])
    else:
        listing = _cached_listing(repo, revision, repo_type)
        if listing is None:
            raise HubError(f"{'HF_HUB_OFFLINE is set' if is_offline() else f'the hub at {where} cannot be reached'} "
                           f"and the cache {cache_dir()} holds nothing of {kind} {repo} at {revision!r}: pull it "
                           "with network access first")
    commit, files = listing
    chosen: list[tuple[str, int]] = []
    for pattern in patterns:
        found = sorted((f for f in files if fnmatch.fnmatchcase(f[0], pattern)), key=lambda f: f[0])
        if not found:
            names = ", ".join(sorted(f[0] for f in files)[:8]) or "none"
            raise HubError(f"{kind} {repo} at {revision!r} has no file matching {pattern!r} (its files: {names})")
        chosen += [f for f in found if f not in chosen]
    return commit, chosen


def pull_matching(repo: str, patterns: Sequence[str], *, revision: str = "main", repo_type: str = "model",
                  max_bytes: int | None = None, card: str | None = None) -> Pulled:
    """The files matching ``patterns``, pulled at the commit ``revision`` resolves to; with ``max_bytes``, only the
    first files whose sizes add up to it (at least one), so a budget bounds the download."""
    commit, files = resolve_files(repo, patterns, revision=revision, repo_type=repo_type)
    names: list[str] = []
    total = 0
    for name, size in files:
        if names and max_bytes is not None and total + size > max_bytes:
            break
        names.append(name)
        total += size
    # by the revision, not the commit: the client then records where the branch pointed, which an offline
    # listing reads; a branch that moved since the listing shows as another commit
    pulled = pull(repo, names, revision=revision, repo_type=repo_type, card=card)
    if pulled.commit != commit:
        raise HubError(f"{repo} moved from commit {commit} to {pulled.commit} while it was pulled; pull again")
    return pulled


def find_cards(registry: Registry, name: str) -> list[ComponentSpec]:
    """The cards named ``name`` (a short name may name a model's weights and its tokenizer, ``gpt2``; a qualified
    id one of them); NotFoundError with the nearest names."""
    cards = [s for s in registry.list() if s.card is not None]
    found = [s for s in cards if name in (s.name, s.id)]
    if found:
        return found
    near = close_matches(name, sorted({s.name for s in cards}))
    hint = f"; did you mean {', '.join(map(repr, near))}?" if near else ""
    raise NotFoundError(f"no card named {name!r}{hint} (python -m registry_core list --tag pretrained and --tag "
                        "dataset list them)")


def pull_card(spec: ComponentSpec, revision: str | None = None) -> Pulled:
    """The files of card ``spec`` at its revision (or ``revision``), checked against its published hashes."""
    card = spec.card
    if not isinstance(card, Card):
        raise HubError(f"{spec.kind} {spec.id} is not a hub card: it names no hub repo")
    pinned = revision or card.revision
    if any(is_pattern(f) for f in card.files):  # a dataset's shards: the files the card's byte budget covers
        budget = card.options.get("max_bytes")
        return pull_matching(card.repo, card.files, revision=pinned, repo_type=card.repo_type,
                             max_bytes=int(budget) if budget else None, card=spec.name)
    # A published hash belongs to the card's revision; another revision may hold other bytes on purpose.
    hashes = card.sha256 if pinned == card.revision else None
    return pull(card.repo, card.files, revision=pinned, repo_type=card.repo_type, sha256=hashes, card=spec.name)
