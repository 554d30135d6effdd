"""The ``prithvi-eo-*`` cards: named Prithvi models pulled from a hub (a real HTTP hub on loopback, the real
``huggingface_hub`` client), built as ``prithvi`` weights, used offline, recorded in the run's lock.

The hub serves the TerraTorch-written fixture (tests/data/prithvi_terratorch: Prithvi's 16-pixel patches, 3 frames
and six bands, 64 wide with 4 heads) in the V1 layout under the file name of the real Prithvi-EO-1.0-100M repo; the
card's `heads` (12, for 768 wide) is set to the fixture's 4, as a user would for a smaller checkpoint.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from registry_core import ConfigError, compose, get_registry
from registry_core.hub import HubError
from registry_core.pipeline._resume import ResumeMismatch
from registry_core.testing import LoopbackHub
from registry_gfm.weights.prithvi import PrithviWeights

FIXTURE = Path(__file__).resolve().parents[4] / "tests" / "data" / "prithvi_terratorch"
REPO, FILE = "ibm-nasa-geospatial/Prithvi-EO-1.0-100M", "Prithvi_EO_V1_100M.pt"
BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]


def v1_checkpoint(scale: float = 1.0) -> bytes:
    """The fixture's tensors in Prithvi-100M's flat layout, as the `.pt` file the V1 repo holds (``scale``: other
    weights of the same shapes)."""
    tensors = load_file(FIXTURE / "prithvi_v2_tiny.safetensors")
    buffer = io.BytesIO()
    torch.save({k.removeprefix("encoder.").removeprefix("decoder."): v * scale for k, v in tensors.items()}, buffer)
    return buffer.getvalue()


def chips(shape: tuple[int, ...] = (2, 6, 3, 224, 224)) -> torch.Tensor:
    """The fixture's input chips (the formula of its make_fixture.py)."""
    i = np.arange(int(np.prod(shape)), dtype=np.float64)
    return torch.from_numpy(np.sin(i * 0.6180339887 + np.cos(i * 0.0123)).reshape(shape).astype(np.float32))


@pytest.fixture
def served(hub: LoopbackHub) -> str:
    """The V1 repo on the loopback hub; its commit."""
    return hub.add_repo(REPO, {FILE: v1_checkpoint(), "config.json": b'{"architecture": "prithvi_eo_v1_100"}\n'})


def test_a_card_builds_as_its_loader_and_gives_terratorchs_features(served: str) -> None:
    weights = get_registry().build("weights", "prithvi-eo-1.0-100m", heads=4)
    assert isinstance(weights, PrithviWeights) and weights.version == "v1"
    assert weights.pulled is not None and weights.pulled.commit == served and weights.pulled.repo == REPO
    assert weights.path.name == FILE and weights.path.parent.name == served
    expected = load_file(FIXTURE / "expected_features.safetensors")["features"]
    with torch.no_grad():
        assert (weights.encoder()(chips()) - expected).abs().max().item() <= 1e-4
    assert weights.normalize(torch.full((1, 6, 1, 2, 2), 775.2290211032589))[0, 0].abs().max().item() < 1e-6


def test_a_pipeline_on_a_pulled_card_runs_offline_and_locks_the_commit(hub: LoopbackHub, served: str,
                                                                        lsat7_store: Path,
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    get_registry().build("weights", "prithvi-eo-1.0-100m", heads=4)  # the first use pulls it
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def pipeline(steps: int, **weights: object) -> Any:
        return compose({
            "data": {"use": "zarr-chips", "store": str(lsat7_store), "chip_size": 32, "bands": BANDS, "frames": 1},
            "tokenizer": {"use": "patch", "patch_size": 16},
            "positional": {"use": "sincos-3d"},
            "backbone": {"use": "vit", "embed_dim": 64, "depth": 2, "heads": 4},
            "objective": {"use": "mae", "decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 4},
            "weights": {"use": "prithvi-eo-1.0-100m", "heads": 4, "decoder_heads": 4, "fills": "encoder+decoder",
                        **weights},
            "train": {"steps": steps, "batch_size": 4, "warmup_steps": 0, "log_every": 1, "device": "cpu"},
        })

    pipe = pipeline(2)
    assert pipe.slots["backbone"].config.layer_norm_eps == 1e-5  # wired from the card's version
    result = pipe.run(tmp_path / "run")
    assert result.step == 2
    lock = json.loads((tmp_path / "run" / "pipeline.lock.json").read_text())
    pinned = lock["hub"]["weights"]
    assert (pinned["repo"], pinned["revision"], pinned["commit"]) == (REPO, "main", served)
    digest = pinned["files"][FILE]["sha256"]
    assert lock["files"][f"weights:{FILE}"]["sha256"] == digest and len(digest) == 64
    assert "[weights]\nuse = \"gfm:prithvi-eo-1.0-100m\"" in (tmp_path / "run" / "pipeline.toml").read_text()

    # Upstream moves `main` on: a resume pulls the new commit and is refused; pinned to the run's commit it resumes.
    monkeypatch.delenv("HF_HUB_OFFLINE")
    hub.add_repo(REPO, {FILE: v1_checkpoint(scale=1.5)})
    with pytest.raises(ResumeMismatch, match=rf"its weights came from {REPO} at commit {served}, this run pulled "
                                             rf"{REPO} at commit \w+ \('main' moved, or the files differ\); resume "
                                             rf'with weights.revision = "{served}"'):
        pipeline(3).run(tmp_path / "run", resume=True)
    with pytest.warns(UserWarning, match="was scheduled for 2 steps, this run for 3"):
        assert pipeline(3, revision=served).run(tmp_path / "run", resume=True).step == 3


def test_a_card_keeps_its_repo_and_files(served: str) -> None:
    with pytest.raises(ConfigError, match=r"gfm:prithvi-eo-1.0-100m is the card of ibm-nasa-geospatial/Prithvi-EO-1.0"
                                          r"-100M; its 'hub' is fixed"):
        get_registry().build("weights", "prithvi-eo-1.0-100m", hub="someone/else")
    # the card's own values, however spelled (a tuple from Python, a list from TOML), are not a change
    assert get_registry().config("weights", "prithvi-eo-1.0-100m", files=(FILE,), heads=4).files == (FILE,)


def test_a_checkpoint_that_contradicts_its_card_is_refused(hub: LoopbackHub) -> None:
    """The 600M card says V2 layout and 14-pixel patches: a repo holding a V1 file, or 16-pixel patches, is refused
    naming the cached file (whose path names the repo)."""
    repo, file = "ibm-nasa-geospatial/Prithvi-EO-2.0-600M", "Prithvi_EO_V2_600M.pt"
    hub.add_repo(repo, {file: v1_checkpoint()})
    with pytest.raises(ValueError, match=r"models--ibm-nasa-geospatial--Prithvi-EO-2.0-600M/snapshots/\w+/"
                                         r"Prithvi_EO_V2_600M.pt is laid out as a Prithvi v1 checkpoint, not v2"):
        get_registry().build("weights", "prithvi-eo-2.0-600m", heads=4)
    v2 = io.BytesIO()
    torch.save(load_file(FIXTURE / "prithvi_v2_tiny.safetensors"), v2)
    hub.add_repo(repo, {file: v2.getvalue()})
    with pytest.raises(ValueError, match=r"Prithvi_EO_V2_600M.pt has 16-pixel patches but patch_size=14"):
        get_registry().build("weights", "prithvi-eo-2.0-600m", heads=4)


def test_offline_without_a_pull_names_the_repo(hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match=r"HF_HUB_OFFLINE is set and 'Prithvi_EO_V2_tiny_TL.pt' of hub repo "
                                       r"ibm-nasa-geospatial/Prithvi-EO-2.0-tiny-TL \(revision 'main'\) is not in the "
                                       r"cache"):
        get_registry().build("weights", "prithvi-eo-2.0-tiny-tl")


def test_each_card_counts_what_its_checkpoint_holds() -> None:
    """The learned tensors of an MAE of the card's architecture, in Prithvi's naming (built on the meta device)."""
    from registry_gfm.weights.cards import VARIANTS
    from registry_gfm.weights.prithvi import prithvi_state_dict

    for v in VARIANTS:
        tl = bool(v.coords)
        with torch.device("meta"):
            pipe = compose({
                "data": {"use": "zarr-chips", "store": "unused.zarr", "chip_size": 224, "bands": BANDS,
                         "frames": v.frames},
                "tokenizer": {"use": "patch", "patch_size": v.patch},
                "positional": {"use": "sincos-3d", "time_encoding": tl, "location_encoding": tl},
                "backbone": {"use": "vit", "embed_dim": v.embed_dim, "depth": v.depth, "heads": v.heads},
                "objective": {"use": "mae", "decoder_dim": 512, "decoder_depth": 8, "decoder_heads": 16},
            }).build(prepare=False)
            held = prithvi_state_dict(pipe.parts, v.version, ("encoder", "decoder"))
        card = get_registry().get("weights", v.repo.lower()).card
        assert card is not None and card.params == sum(t.numel() for t in held.values()), v.repo
