"""``registry_core.hub.pull`` and ``pull``: the real ``huggingface_hub`` client against a hub on loopback."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from registry_core.hub import HubError, pull
from registry_core.testing import LoopbackHub

pytest.importorskip("huggingface_hub", minversion="1.0")

WEIGHTS = bytes(range(256)) * 64  # 16 KiB: an LFS file, whose ETag is its sha256
CONFIG = b'{"hidden_size": 8}\n'  # a small git file
REPO = "acme/tiny"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_core", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_pull_fetches_hashes_and_then_works_offline(hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch) -> None:
    commit = hub.add_repo(REPO, {"model.safetensors": WEIGHTS, "config.json": CONFIG})
    pulled = pull(REPO, ["config.json", "model.safetensors"])
    assert pulled.commit == commit and pulled.revision == "main" and pulled.endpoint == hub.endpoint
    assert [(f.name, f.size, f.sha256) for f in pulled.files] == [
        ("config.json", len(CONFIG), sha256(CONFIG)), ("model.safetensors", len(WEIGHTS), sha256(WEIGHTS))]
    assert pulled.path("model.safetensors").read_bytes() == WEIGHTS
    assert pulled.folder == pulled.path("config.json").parent and pulled.folder.name == commit
    assert Path(os.environ["HF_HOME"]) in pulled.folder.parents  # huggingface_hub's cache, where HF_HOME says

    seen = len(hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = pull(REPO, ["config.json", "model.safetensors"])
    assert again == pulled and len(hub.requests) == seen  # the cache alone

    monkeypatch.delenv("HF_HUB_OFFLINE")
    newer = hub.add_repo(REPO, {"model.safetensors": WEIGHTS[::-1], "config.json": CONFIG})
    moved = pull(REPO, ["model.safetensors"])
    assert moved.commit == newer and moved.files[0].sha256 == sha256(WEIGHTS[::-1])
    pinned = pull(REPO, ["model.safetensors"], revision=commit)  # an old commit stays reachable by its sha
    assert pinned.commit == commit and pinned.files[0].sha256 == sha256(WEIGHTS)


def test_a_file_that_is_not_what_its_hash_says_is_refused(hub: LoopbackHub) -> None:
    hub.add_repo(REPO, {"model.safetensors": WEIGHTS})
    # The hub sends other bytes of the same size than its ETag says: huggingface_hub checks only sizes; we refuse,
    # after fetching it once more.
    hub.corrupt(REPO, "model.safetensors")
    with pytest.raises(HubError, match=r"'model.safetensors' of acme/tiny \(commit \w+\) has sha256 \w+, but the "
                                       r"hub's sha256 \(its ETag\) is " + sha256(WEIGHTS) + ": refused, not used"):
        pull(REPO, ["model.safetensors"])
    assert sum(r.method == "GET" for r in hub.requests) == 2
    hub.clear_faults()
    assert pull(REPO, ["model.safetensors"]).files[0].sha256 == sha256(WEIGHTS)  # the bad copy is fetched again
    # A hash the caller (a card) publishes is checked too.
    with pytest.raises(HubError, match=r"has sha256 " + sha256(WEIGHTS) + r", but card tiny expects 0{64}: refused"):
        pull(REPO, ["model.safetensors"], sha256={"model.safetensors": "0" * 64}, card="tiny")


@pytest.mark.parametrize(("repo", "file", "revision", "message"), [
    ("acme/nothing", "config.json", "main", r"hub repo acme/nothing was not found at http://127\.0\.0\.1:\d+: check "
                                            r"the name \(a private repo also needs HF_TOKEN\)"),
    (REPO, "missing.bin", "main", r"hub repo acme/tiny has no file 'missing\.bin' at revision 'main'"),
    (REPO, "config.json", "v9", r"revision 'v9' of hub repo acme/tiny was not found at http://127\.0\.0\.1:\d+"),
])
def test_unknown_repos_files_and_revisions_are_named(hub: LoopbackHub, repo: str, file: str, revision: str,
                                                     message: str) -> None:
    hub.add_repo(REPO, {"config.json": CONFIG})
    with pytest.raises(HubError, match=message):
        pull(repo, [file], revision=revision)


def test_a_gated_repo_needs_a_token(hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.add_repo("acme/gated", {"model.safetensors": WEIGHTS}, gated=True)
    with pytest.raises(HubError, match=r"hub repo acme/gated at http://127\.0\.0\.1:\d+ is gated: accept its terms "
                                       r"on its page and set HF_TOKEN"):
        pull("acme/gated", ["model.safetensors"])
    monkeypatch.setenv("HF_TOKEN", hub.token)
    assert pull("acme/gated", ["model.safetensors"]).files[0].sha256 == sha256(WEIGHTS)


def test_offline_with_an_empty_cache_and_an_unreachable_hub_say_what_to_do(hub: LoopbackHub,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    hub.add_repo(REPO, {"config.json": CONFIG})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match=r"HF_HUB_OFFLINE is set and 'config\.json' of hub repo acme/tiny \(revision "
                                       r"'main'\) is not in the cache .*hf-home/hub: run a pull with network access "
                                       r"first"):
        pull(REPO, ["config.json"])
    monkeypatch.delenv("HF_HUB_OFFLINE")
    gone = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", gone)
    with pytest.raises(HubError, match=rf"cannot reach the hub at {gone} to get 'config\.json' of hub repo acme/tiny, "
                                       r"and the cache .* does not hold it: .* set HF_HUB_OFFLINE=1 to use the cache"):
        pull(REPO, ["config.json"])
    # What the cache holds is used when the hub cannot be reached, with a warning saying so.
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    online = pull(REPO, ["config.json"])
    monkeypatch.setenv("HF_ENDPOINT", gone)
    with pytest.warns(UserWarning, match=rf"the hub at {gone} cannot be reached: using the cached acme/tiny \(commit "
                                         rf"{online.commit}\)"):
        assert pull(REPO, ["config.json"]).files == online.files


def test_the_pull_command_prints_what_it_stored(hub: LoopbackHub) -> None:
    """A card of the bundled plugins, pulled from the loopback hub through the CLI (a subprocess: HF_* from the env)."""
    commit = hub.add_repo("ibm-nasa-geospatial/Prithvi-EO-1.0-100M", {"Prithvi_EO_V1_100M.pt": WEIGHTS,
                                                                     "config.json": CONFIG})
    out = cli("pull", "prithvi-eo-1.0-100m")
    assert out.returncode == 0, out.stderr
    assert f"ibm-nasa-geospatial/Prithvi-EO-1.0-100M at main (commit {commit})" in out.stdout
    assert "Prithvi_EO_V1_100M.pt" in out.stdout and sha256(WEIGHTS) in out.stdout
    [record] = json.loads(cli("pull", "prithvi-eo-1.0-100m", "--json").stdout)
    assert record["card"] == "gfm:prithvi-eo-1.0-100m" and record["commit"] == commit
    assert [(f["name"], f["sha256"]) for f in record["files"]] == [("Prithvi_EO_V1_100M.pt", sha256(WEIGHTS))]
    wrong = cli("pull", "prithvi-eo-2.0-300")
    assert wrong.returncode == 1 and wrong.stderr.startswith("error: no card named 'prithvi-eo-2.0-300'; did you mean")
    assert "'prithvi-eo-2.0-300m'" in wrong.stderr and len(wrong.stderr.splitlines()) == 1
    missing = cli("pull", "gpt2")  # not on this hub
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [f"error: hub repo openai-community/gpt2 was not found at {hub.endpoint}: "
                                           "check the name (a private repo also needs HF_TOKEN)"]


def test_a_connection_dropped_mid_file_fails_in_one_line_and_the_next_pull_completes(
        hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client retries a cut download itself (from whole 10 MiB chunks, after 1 s pauses, skipped here); when
    every retry is cut the pull fails naming the file, leaves nothing half-written in the cache, and the next pull
    fetches it whole."""
    import time

    from huggingface_hub import file_download

    class _NoPause:
        def __getattr__(self, name: str) -> object:
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            return None

    monkeypatch.setattr(file_download, "time", _NoPause())
    hub.add_repo(REPO, {"model.safetensors": WEIGHTS})
    hub.drop_after(REPO, "model.safetensors", 1000)
    hub.drop_after(REPO, "model.safetensors", 0, times=5)
    with pytest.raises(HubError, match=r"^'model.safetensors' of hub repo acme/tiny could not be pulled from "
                                       r"http://127\.0\.0\.1:\d+: \w+") as failure:
        pull(REPO, ["model.safetensors"])
    assert "\n" not in str(failure.value)
    cache = Path(os.environ["HF_HOME"]) / "hub" / "models--acme--tiny"
    assert not [p for p in cache.rglob("*") if p.is_file() and p.name.endswith(".incomplete")]
    assert pull(REPO, ["model.safetensors"]).files[0].sha256 == sha256(WEIGHTS)


CARD_PLUGIN = '''
from registry_core import Card, ComponentSpec, hookimpl


@hookimpl
def registry_core_components():
    # A third-party card: the bundled prithvi loader preset to another organisation's repo, declared as data.
    return [ComponentSpec(
        "weights", "acme-prithvi-fork", "registry_gfm.weights.prithvi:build",
        "ACME's Prithvi fork (a card of a third-party plugin).", modality="imagery",
        config="registry_gfm.weights.specs:PrithviConfig", provides={"patch_size": None, "bands": None},
        card=Card(repo="acme/prithvi-fork", files=("fork.pt",), licence="apache-2.0",
                  options={"version": "v2", "heads": 4}, preprocessing={"bands": "HLS, 6"}),
    )]
'''


def test_a_third_party_plugin_adds_a_card_the_same_way(hub: LoopbackHub, make_dist) -> None:
    make_dist("acmecards", CARD_PLUGIN, dist_name="acme-cards", version="0.1.0")
    listed = cli("list", "--tag", "pretrained")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "acme-prithvi-fork" in line)
    assert "acme/prithvi-fork" in row and "acme-cards 0.1.0" in row
    shown = cli("show", "weights", "acme-prithvi-fork")
    assert "card:        acme/prithvi-fork (model repo) at main" in shown.stdout and "fork.pt" in shown.stdout
    hub.add_repo("acme/prithvi-fork", {"fork.pt": WEIGHTS})
    pulled = cli("pull", "acme-prithvi-fork", "--json")
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)[0]["files"][0]["sha256"] == sha256(WEIGHTS)
