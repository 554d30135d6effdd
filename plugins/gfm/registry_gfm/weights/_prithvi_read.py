"""Read a Prithvi checkpoint safely, tell V1 from V2, derive the model's sizes from tensor shapes, check the layout.

``.pt`` files go through ``torch.load(weights_only=True)``, which refuses any pickle that would build
objects other than tensors and plain containers (so a checkpoint cannot run code); ``.safetensors``
files hold tensors only. Every check names the file and the keys, all problems at once.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import torch

from registry_core.nn import key_listing
from registry_gfm.weights._prithvi_keys import METADATA_SCALES, TABLES

__all__ = ["IMG_SIZE", "PrithviDims", "check_layout", "derive_dims", "detect_version", "read_checkpoint"]

#: Side of the chips Prithvi was pretrained on; its ``pos_embed`` rows are ``1 + frames * (224 / patch)^2``.
IMG_SIZE: Final = 224
#: Encoder heads of the published models by width (Prithvi-100M: 768 -> 12; EO-2.0 300M: 1024 -> 16 and
#: 600M: 1280 -> 16); shapes cannot tell heads apart, so other widths take ``width // 64``.
KNOWN_HEADS: Final = {768: 12, 1024: 16, 1280: 16}
#: Decoder heads of every published Prithvi (``decoder_num_heads: 16``).
DECODER_HEADS: Final = 16


@dataclass(frozen=True)
class PrithviDims:
    """The sizes of a Prithvi MAE as its tensors show them (decoder fields None when it has no decoder)."""

    embed_dim: int
    depth: int
    heads: int
    mlp_hidden: int
    channels: int
    patch_size: int
    tubelet: int
    frames: int | None
    decoder_embed_dim: int | None = None
    decoder_depth: int | None = None
    decoder_heads: int | None = None
    decoder_mlp_hidden: int | None = None


def _unwrap(obj: Any, path: Path, who: str = "prithvi") -> dict[str, torch.Tensor]:
    """The state dict inside ``obj`` (itself, or under ``model`` / ``state_dict``); only tensors allowed."""
    if isinstance(obj, Mapping):
        for wrapper in ("model", "state_dict"):
            inner = obj.get(wrapper)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping):
        raise ValueError(f"{who}: {path} holds a {type(obj).__name__}, expected a state dict of tensors "
                         "(optionally under 'model' or 'state_dict')")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{who}: {path} has entries that are not named tensors: {key_listing(bad)}")
    return dict(obj)


def read_checkpoint(path: Path, who: str = "prithvi", safe: tuple[type, ...] = ()) -> dict[str, torch.Tensor]:
    """Every tensor of a ``.pt`` / ``.pth`` / ``.bin`` (weights-only unpickling) or ``.safetensors`` file.

    ``safe``: plain-data classes the weights-only unpickler may also build (SatMAE saves its ``argparse.Namespace``
    beside the weights); ``who`` starts the messages.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{who}: weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                return _unwrap({k: f.get_tensor(k) for k in f.keys()}, path, who)  # noqa: SIM118
        except Exception as exc:  # safetensors raises its own error types for corrupt headers
            raise ValueError(f"{who}: cannot read {path} as safetensors: {exc}") from None
    try:
        with torch.serialization.safe_globals(list(safe)):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{who}: refused to load {path}: it is a pickle that would build Python objects beyond tensors "
            f"(it could run code when loaded), and only weights are read (torch.load weights_only=True). "
            f"torch says: {first}. Convert it to .safetensors where you trust it."
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise ValueError(f"{who}: cannot read {path} as a torch checkpoint: {exc}") from None
    return _unwrap(obj, path, who)


def detect_version(tensors: Mapping[str, torch.Tensor], version: str, path: Path) -> str:
    """``v1`` (flat MAE keys) or ``v2`` (``encoder.`` / ``decoder.``); ``version`` other than ``auto`` is kept."""
    if version != "auto":
        return version
    if "encoder.patch_embed.proj.weight" in tensors:
        return "v2"
    if "patch_embed.proj.weight" in tensors:
        return "v1"
    raise ValueError(
        f"prithvi: {path} is neither a Prithvi V1 checkpoint (patch_embed.proj.weight, blocks.N...) nor a V2 one "
        f"(encoder.patch_embed.proj.weight, encoder.blocks.N...); its keys start with {key_listing(sorted(tensors))}"
    )


def _prefixes(version: str) -> tuple[str, str]:
    return ("encoder.", "decoder.") if version == "v2" else ("", "")


def _need(tensors: Mapping[str, torch.Tensor], key: str, dims: int, what: str, path: Path, version: str) -> torch.Tensor:
    value = tensors.get(key)
    if value is None:
        raise ValueError(f"prithvi: {path} lacks {key!r}, which every Prithvi {version} checkpoint has ({what}); "
                         f"its keys start with {key_listing(sorted(tensors))}")
    if value.dim() != dims:
        raise ValueError(f"prithvi: {path}: {key!r} is {tuple(value.shape)}, expected {what}")
    return value


def _count(tensors: Mapping[str, torch.Tensor], prefix: str) -> int:
    """Blocks ``{prefix}{i}.`` present: the highest index plus one."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = [int(m.group(1)) for k in tensors if (m := pattern.match(k))]
    return max(found) + 1 if found else 0


def derive_dims(
    tensors: Mapping[str, torch.Tensor], version: str, path: Path, *, heads: int | None = None,
    decoder_heads: int | None = None,
) -> PrithviDims:
    """The model's sizes from the tensor shapes; ``heads`` / ``decoder_heads`` override the published counts."""
    enc, dec = _prefixes(version)
    other = "v1" if version == "v2" else "v2"
    if f"{enc}patch_embed.proj.weight" not in tensors and f"{_prefixes(other)[0]}patch_embed.proj.weight" in tensors:
        raise ValueError(f"prithvi: {path} is laid out as a Prithvi {other} checkpoint, not {version} (it has "
                         f"{_prefixes(other)[0]}patch_embed.proj.weight); set version = '{other}' or 'auto'")
    proj = _need(tensors, f"{enc}patch_embed.proj.weight", 5, "a Conv3d weight [embed_dim, bands, tubelet, patch, "
                 "patch]", path, version)
    width, channels, tubelet, patch, patch_w = (int(s) for s in proj.shape)
    if patch != patch_w:
        raise ValueError(f"prithvi: {path}: patch_embed.proj.weight is {tuple(proj.shape)}; only square patches load")
    fc = _need(tensors, f"{enc}blocks.0.mlp.fc1.weight", 2, "a Linear weight [mlp_hidden, embed_dim]", path, version)
    frames = None
    pos = tensors.get(f"{enc}pos_embed")
    grid = IMG_SIZE // patch
    if pos is not None and pos.dim() == 3 and (pos.shape[1] - 1) % (grid * grid) == 0:
        frames = (int(pos.shape[1]) - 1) // (grid * grid) * tubelet
    dims: dict[str, Any] = {}
    if f"{dec}decoder_embed.weight" in tensors:
        embed = _need(tensors, f"{dec}decoder_embed.weight", 2, "a Linear weight [decoder_embed_dim, embed_dim]",
                      path, version)
        dfc = _need(tensors, f"{dec}decoder_blocks.0.mlp.fc1.weight", 2, "a Linear weight [mlp_hidden, "
                    "decoder_embed_dim]", path, version)
        dims = {"decoder_embed_dim": int(embed.shape[0]), "decoder_depth": _count(tensors, f"{dec}decoder_blocks."),
                "decoder_heads": decoder_heads or DECODER_HEADS, "decoder_mlp_hidden": int(dfc.shape[0])}
    return PrithviDims(width, _count(tensors, f"{enc}blocks."), heads or KNOWN_HEADS.get(width, max(1, width // 64)),
                       int(fc.shape[0]), channels, patch, tubelet, frames, **dims)


def _block_shapes(prefix: str, width: int, hidden: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}ln1.weight": (width,), f"{prefix}ln1.bias": (width,),
        f"{prefix}attn.qkv.weight": (3 * width, width), f"{prefix}attn.qkv.bias": (3 * width,),
        f"{prefix}attn.proj.weight": (width, width), f"{prefix}attn.proj.bias": (width,),
        f"{prefix}ln2.weight": (width,), f"{prefix}ln2.bias": (width,),
        f"{prefix}mlp.fc.weight": (hidden, width), f"{prefix}mlp.fc.bias": (hidden,),
        f"{prefix}mlp.proj.weight": (width, hidden), f"{prefix}mlp.proj.bias": (width,),
    }


def our_shapes(d: PrithviDims) -> dict[str, tuple[int, ...]]:
    """Every tensor (our names) of a Prithvi MAE of sizes ``d``, without the optional metadata scales."""
    out: dict[str, tuple[int, ...]] = {
        "embed.proj.weight": (d.embed_dim, d.channels, d.tubelet, d.patch_size, d.patch_size),
        "embed.proj.bias": (d.embed_dim,),
        "backbone.prefix": (1, 1, d.embed_dim),
        "backbone.ln_f.weight": (d.embed_dim,), "backbone.ln_f.bias": (d.embed_dim,),
    }
    for i in range(d.depth):
        out.update(_block_shapes(f"backbone.blocks.{i}.", d.embed_dim, d.mlp_hidden))
    if d.decoder_embed_dim is not None and d.decoder_depth is not None and d.decoder_mlp_hidden is not None:
        dd, pred = d.decoder_embed_dim, d.tubelet * d.patch_size * d.patch_size * d.channels
        out.update({"objective.decoder_embed.weight": (dd, d.embed_dim), "objective.decoder_embed.bias": (dd,),
                    "objective.mask_token": (1, 1, dd),
                    "objective.decoder.ln_f.weight": (dd,), "objective.decoder.ln_f.bias": (dd,),
                    "objective.decoder_pred.weight": (pred, dd), "objective.decoder_pred.bias": (pred,)})
        for i in range(d.decoder_depth):
            out.update(_block_shapes(f"objective.decoder.blocks.{i}.", dd, d.decoder_mlp_hidden))
    return out


def check_layout(tensors: Mapping[str, torch.Tensor], dims: PrithviDims, version: str, path: Path) -> None:
    """Every key the version's layout has for these sizes is there with its shape, and no other key is."""
    table = TABLES[version]
    meta = {k: torch.empty(s, device="meta") for k, s in our_shapes(dims).items()}
    expected = {k: tuple(v.shape) for k, v in table.convert(meta, "theirs").tensors.items()}
    enc, dec = _prefixes(version)
    optional = {k: (1,) for k in METADATA_SCALES} if version == "v2" else {}
    grid = (IMG_SIZE // dims.patch_size) ** 2
    ignored = {f"{enc}pos_embed": dims.embed_dim, f"{dec}decoder_pos_embed": dims.decoder_embed_dim}
    missing = [k for k in expected if k not in tensors]
    unexpected, misshapen = [], []
    for key, value in tensors.items():
        shape = tuple(value.shape)
        want = expected.get(key, optional.get(key))
        if key in ignored:
            width = ignored[key]
            if width is None:
                unexpected.append(key)
            elif value.dim() != 3 or shape[0] != 1 or shape[2] != width or (shape[1] - 1) % grid:
                misshapen.append(f"{key} is {shape}, expected (1, 1 + frames * {grid}, {width})")
        elif want is None:
            unexpected.append(key)
        elif shape != want:
            misshapen.append(f"{key} is {shape}, expected {want}")
    problems = []
    if missing:
        problems.append(f"{len(missing)} key(s) missing: {key_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {key_listing(unexpected)}")
    if misshapen:
        problems.append(f"{len(misshapen)} tensor(s) of another shape: {key_listing(misshapen)}")
    if problems:
        sizes = (f"embed_dim={dims.embed_dim}, depth={dims.depth}, bands={dims.channels}, patch={dims.patch_size}, "
                 f"tubelet={dims.tubelet}, decoder_embed_dim={dims.decoder_embed_dim}, "
                 f"decoder_depth={dims.decoder_depth}")
        raise ValueError(f"prithvi: {path} is not a Prithvi {version} checkpoint of the sizes its tensors show "
                         f"({sizes}): " + "; ".join(problems))
