"""Config schemas and specs of the pretrained-weight formats of the imagery stack (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from registry_core import ComponentSpec, option
from registry_core.choices import HubSource

FILLS = ("encoder", "encoder+decoder")
#: What a Prithvi checkpoint file is named like (the other files of a repo are its config and docs).
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")


def checkpoint_files(files: tuple[str, ...] | list[str]) -> list[str]:
    """The checkpoints among a repo's file names."""
    return [f for f in files if f.endswith(CHECKPOINT_SUFFIXES)]


#: The six HLS bands every Prithvi was pretrained on, in their order: HLS B02, B03, B04, B8A (S30) / B05 (L30),
#: B11 / B06, B12 / B07 (Prithvi-100M config ``bands: [B02, B03, B04, B05, B06, B07]``; EO-2.0 config.json the same).
PUBLISHED_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir08", "swir16", "swir22")
#: Per-band mean and std of the pretraining data, HLS surface reflectance x 10000, in PUBLISHED_BANDS order.
PUBLISHED_STATS: Final[dict[str, tuple[tuple[float, ...], tuple[float, ...]]]] = {
    # ibm-nasa-geospatial/Prithvi-100M, Prithvi_100M_config.yaml (data_mean / data_std)
    "v1": ((775.2290211032589, 1080.992780391705, 1228.5855250417867, 2497.2022620507532, 2204.2139147975554,
            1610.8324823273745),
           (1281.526139861424, 1270.0297974547493, 1399.4802505642526, 1368.3446143747644, 1291.6764008585435,
            1154.505683480695)),
    # ibm-nasa-geospatial/Prithvi-EO-2.0-300M (and -600M, -TL), config.json pretrained_cfg mean / std
    "v2": ((1087.0, 1342.0, 1433.0, 2734.0, 1958.0, 1363.0),
           (2248.0, 2179.0, 2178.0, 1850.0, 1242.0, 1049.0)),
}
VERSIONS = ("auto", "v1", "v2")
#: LayerNorm epsilon of the code each Prithvi family was trained and is run with: the original Prithvi MAE
#: (V1, ``Prithvi.py`` of hls-foundation-os) and TerraTorch's ``PrithviViT`` / ``PrithviMAE`` (EO-2.0) both
#: build their blocks and norms with ``norm_layer=nn.LayerNorm``, whose default eps is 1e-5 (timm's ViT,
#: whose ``Block`` they reuse, passes 1e-6 itself; Prithvi does not).
PUBLISHED_LAYER_NORM_EPS: dict[str, float] = {"v1": 1e-5, "v2": 1e-5}


def prithvi_layer_norm_eps(version: str) -> float | None:
    """The LayerNorm epsilon of Prithvi ``version`` ('auto': the one all versions share; None for another name)."""
    if version != "auto":
        return PUBLISHED_LAYER_NORM_EPS.get(version)
    values = set(PUBLISHED_LAYER_NORM_EPS.values())
    return values.pop() if len(values) == 1 else None


@dataclass
class PrithviConfig(HubSource):
    """A Prithvi checkpoint (V1 ``Prithvi_EO_V1_100M.pt`` or V2 ``Prithvi_EO_V2_*.pt``; .pt or .safetensors), a
    local file or pulled from a hub repo (``hub`` + ``files``; the cards ``prithvi-eo-*`` set them)."""

    path: str | None = option(None, help="the local checkpoint file: .pt / .pth (read weights-only: a pickle that "
                              "would run code is refused) or .safetensors; a state dict, or one under 'model' / "
                              "'state_dict'. None: pulled from `hub`")
    version: str = option("auto", help="layout: 'v1' (flat MAE keys of Prithvi-100M), 'v2' (terratorch's "
                          "encoder./decoder. keys of Prithvi-EO-2.0), or 'auto' to tell from the keys", choices=VERSIONS)
    fills: str = option("encoder", help="what the checkpoint fills: 'encoder' (patch embedding, positions, "
                        "backbone; its decoder is dropped) or 'encoder+decoder' (also the MAE objective)",
                        choices=FILLS)
    band_map: dict[str, str] | None = option(None, help="data band -> weights band (e.g. {'B8A': 'nir08'}), to "
                                             "feed the data's bands in its own order; bands not named map to the "
                                             "same band of the weights. None: the data must have the weights' "
                                             "bands in their order (blue, green, red, nir08, swir16, swir22)")
    allow_new_bands: bool = option(False, help="let data bands the weights lack in: their patch-projection "
                                   "slices start as the mean of the others' (with a warning); false: an error")
    data_bands: tuple[str, ...] | None = option(None, help="the data's bands in order (wired from the data "
                                                "source's `bands`); None: the weights' own bands", wired="bands")
    patch_size: int = option(16, help="patch side in pixels (the `patch_size` port); must match the checkpoint",
                             min=1)
    heads: int | None = option(None, help="encoder attention heads (None: the published count for the width: "
                               "768 -> 12, 1024 and 1280 -> 16; shapes cannot show it)", min=1)
    decoder_heads: int | None = option(None, help="decoder attention heads (None: 16, as every Prithvi)", min=1)

    def __post_init__(self) -> None:
        self.check_source("prithvi", self.path is not None)
        if self.hub is not None and self.files is not None and len(checkpoint_files(self.files)) != 1:
            raise ValueError(f"prithvi: files {list(self.files)} must name exactly one checkpoint "
                             f"({', '.join(CHECKPOINT_SUFFIXES)}) of {self.hub}")

    @property
    def layer_norm_eps(self) -> float | None:
        """The `layer_norm_eps` port: the epsilon of the version's code (None for 'auto' if versions disagreed)."""
        return prithvi_layer_norm_eps(self.version)

    @property
    def bands(self) -> tuple[str, ...]:
        """The `bands` port, checked against the data at composition: the weights' bands in their order, or,
        with a ``band_map`` or ``allow_new_bands``, the data's own (the mapping is checked when built)."""
        if self.data_bands is not None and (self.band_map is not None or self.allow_new_bands):
            return tuple(self.data_bands)
        return PUBLISHED_BANDS


#: SatMAE's multi-spectral bands: Sentinel-2's 13 without B1, B9 and B10 (its ``dropped_bands``), in its order,
#: and its default channel groups ((0, 1, 2, 6), (3, 4, 5, 7), (8, 9)): visible + NIR, red edge, SWIR.
SATMAE_BANDS: tuple[str, ...] = ("blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "swir16",
                                 "swir22")
SATMAE_GROUPS: tuple[tuple[str, ...], ...] = (("blue", "green", "red", "nir"), ("rededge1", "rededge2", "rededge3",
                                                                                "nir08"), ("swir16", "swir22"))
#: SatMAE builds every LayerNorm with ``partial(nn.LayerNorm, eps=1e-6)`` (timm's ViT convention).
SATMAE_LAYER_NORM_EPS = 1e-6


@dataclass
class SatMAEConfig(HubSource):
    """A SatMAE group-channel checkpoint (``MaskedAutoencoderGroupChannelViT`` or its finetuned
    ``GroupChannelsVisionTransformer``; .pth weights-only or .safetensors), a local file or pulled from a hub repo."""

    path: str | None = option(None, help="the local checkpoint: .pth / .pt (weights-only; SatMAE's saved "
                              "argparse.Namespace is allowed) or .safetensors; a state dict, or one under 'model'. "
                              "None: pulled from `hub` (`files` names the checkpoint)")
    patch_size: int = option(8, help="patch side in pixels (the `patch_size` port; SatMAE multi-spectral: 8); must "
                             "match the checkpoint", min=1)
    heads: int | None = option(None, help="encoder attention heads (None: width / 64, as SatMAE's ViT-B and ViT-L; "
                               "shapes cannot show it)", min=1)
    data_bands: tuple[str, ...] | None = option(None, help="the data's bands in order (wired from the data "
                                                "source's `bands`); checked against SatMAE's", wired="bands")

    def __post_init__(self) -> None:
        self.check_source("satmae", self.path is not None)

    @property
    def bands(self) -> tuple[str, ...]:
        """The `bands` port: SatMAE's ten Sentinel-2 bands in its order."""
        return SATMAE_BANDS

    @property
    def layer_norm_eps(self) -> float:
        """The `layer_norm_eps` port: SatMAE's 1e-6."""
        return SATMAE_LAYER_NORM_EPS


def read_run_config(path: str) -> dict[str, Any]:
    """The ``pipeline.toml`` of a run folder (``registry_core.runs.read_finished_run``: stdlib only, so composition
    can check the run's ports)."""
    from registry_core.runs import read_finished_run

    return read_finished_run(path)


@dataclass
class FromRunConfig:
    """The encoder of a finished run of ours (e.g. ``runs/mae-tiny``), with its bands and normalisation."""

    path: str = option(help="the run folder: what `run X.toml --out FOLDER` wrote (pipeline.toml, "
                       "model.safetensors); its patch embedding, positions and backbone are loaded")
    data_bands: tuple[str, ...] | None = option(None, help="the data's bands in order (wired from the data "
                                                "source's `bands`, checked against the run's)", wired="bands")

    def __post_init__(self) -> None:
        self.run_config = read_run_config(self.path)
        modality = {slot: _modality(kind, self._run_option(slot, "use"))
                    for slot, kind in (("data", "data_source"), ("tokenizer", "tokenizer"), ("backbone", "backbone"))}
        if "text" in modality.values():
            shown = ", ".join(f"{slot} `{self._run_option(slot, 'use')}`" for slot in modality)
            raise ValueError(f"run folder {self.path} is a text run ({shown}): from-run loads the encoder of an "
                             "imagery run (a patch tokenizer and an image backbone), such as runs/mae-tiny")

    def _run_option(self, slot: str, key: str) -> Any:
        table = self.run_config.get(slot, {})
        return table.get(key) if isinstance(table, dict) else None

    @property
    def bands(self) -> tuple[str, ...] | None:
        """The `bands` port: the bands the run's encoder was trained on, in order (None: the run did not say)."""
        bands = self._run_option("data", "bands") or self._run_option("tokenizer", "bands")
        return tuple(bands) if bands else None

    @property
    def patch_size(self) -> int | None:
        """The `patch_size` port: the run's tokenizer patch size."""
        value = self._run_option("tokenizer", "patch_size")
        return int(value) if value is not None else None

    @property
    def embed_dim(self) -> int | None:
        """The `embed_dim` port: the run's backbone width."""
        value = self._run_option("backbone", "embed_dim")
        return int(value) if value is not None else None

    @property
    def layer_norm_eps(self) -> float | None:
        """The `layer_norm_eps` port: the epsilon the run's backbone trained with, as the run set it or as its
        own weights wired it (run folders leave wired values out); None: the run kept the backbone default."""
        return _run_layer_norm_eps(self.run_config, depth=0)


def _modality(kind: str, use: Any) -> str | None:
    """The registered modality of the component a run's slot used (None: not named, or not installed here)."""
    if not isinstance(use, str):
        return None
    from registry_core import get_registry

    try:
        return get_registry().get(kind, use).modality
    except LookupError:
        return None


def _run_layer_norm_eps(run_config: dict[str, Any], depth: int) -> float | None:
    """A run's backbone epsilon: its ``backbone.layer_norm_eps``, else what its ``weights`` provided."""
    backbone = run_config.get("backbone")
    value = backbone.get("layer_norm_eps") if isinstance(backbone, dict) else None
    if value is not None:
        return float(value)
    weights = run_config.get("weights")
    if not isinstance(weights, dict) or depth > 8:  # a chain of from-run runs deeper than this is a loop
        return None
    name = str(weights.get("use", "")).rpartition(":")[2]
    if name == "prithvi":
        return prithvi_layer_norm_eps(str(weights.get("version", "auto")))
    if name == "from-run" and weights.get("path"):
        try:
            return _run_layer_norm_eps(read_run_config(str(weights["path"])), depth + 1)
        except (OSError, ValueError):
            return None  # the earlier run is gone: its encoder's tensors now live in this run's own files
    return None


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="weights",
        name="prithvi",
        target="registry_gfm.weights.prithvi:build",
        summary="Load a Prithvi MAE checkpoint (V1 100M, V2 EO-2.0; .pt weights-only or .safetensors) into the "
        "imagery ViT encoder (and MAE decoder), with band order checks.",
        modality="imagery",
        tags=("prithvi", "mae", "vit", "hls", "safetensors"),
        config=PrithviConfig,
        provides={"patch_size": None, "bands": None, "layer_norm_eps": None},
    ),
    ComponentSpec(
        kind="weights",
        name="from-run",
        target="registry_gfm.weights.from_run:build",
        summary="The encoder of a finished run of ours (path = 'runs/mae-tiny'): patch embedding, positions and "
        "backbone, with the run's bands, patch size and normalisation checked and carried over.",
        modality="imagery",
        tags=("gfm", "finetuning", "safetensors"),
        config=FromRunConfig,
        provides={"patch_size": None, "bands": None, "embed_dim": None, "layer_norm_eps": None},
    ),
    ComponentSpec(
        kind="weights",
        name="satmae",
        target="registry_gfm.weights.satmae:build",
        summary="Load a SatMAE group-channel checkpoint (multi-spectral Sentinel-2, 3 band groups) into patch "
        "(band_groups, group_embed_dim) + sincos-2d (table_dim) + vit, as SatMAE's own model computes it.",
        modality="imagery",
        tags=("satmae", "mae", "vit", "sentinel-2"),
        config=SatMAEConfig,
        provides={"patch_size": None, "bands": None, "layer_norm_eps": None},
    ),
]
