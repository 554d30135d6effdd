"""Regenerate the SatMAE group-channel parity fixture from SatMAE's own model code (see README.md beside this file).

SatMAE's code is not in this repository (it is CC BY-NC 4.0): the script reads ``models_mae_group_channels.py``,
``models_vit_group_channels.py`` and ``util/pos_embed.py`` from a SatMAE checkout (a work tree or a bare git
directory; ``git archive`` exports them to a temporary folder) and imports them from there. Run it in a throw-away
environment that has the timm SatMAE's ``Block(..., qk_scale=None)`` needs (not in our test extra):

    python3 -m venv /tmp/satmae-venv
    /tmp/satmae-venv/bin/pip install torch==2.13.0 numpy safetensors requests
    /tmp/satmae-venv/bin/pip install --no-deps timm==0.4.9 torchvision==0.16.2
    /tmp/satmae-venv/bin/python tests/data/satmae_groupchannel/make_fixture.py --satmae /path/to/SatMAE
    /tmp/satmae-venv/bin/python tests/data/satmae_groupchannel/make_fixture.py --satmae /path/to/SatMAE --check

It writes ``satmae_tiny.safetensors`` (``MaskedAutoencoderGroupChannelViT.state_dict()``, the pre-training
checkpoint layout), ``satmae_vit_tiny.safetensors`` (``GroupChannelsVisionTransformer.state_dict()`` after
main_finetune.py's loading of the former, the fine-tuning checkpoint layout) and ``expected_features.safetensors``
(``features``: the MAE encoder's tokens with nothing masked, in the original token order; ``vit_cls``:
``GroupChannelsVisionTransformer.forward_features(chips)``). ``--check`` reloads the three files into fresh
SatMAE models and recomputes both references, which must be equal bit for bit.
"""

from __future__ import annotations

import argparse
import importlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

HERE = Path(__file__).resolve().parent
#: SatMAE's files the fixture needs (``util`` has no ``__init__.py`` upstream: a namespace package).
SATMAE_FILES = ("models_mae_group_channels.py", "models_vit_group_channels.py", "util/pos_embed.py")
#: SatMAE's default band groups (main_pretrain.py / main_finetune.py, the 10 fMoW-Sentinel bands kept).
CHANNEL_GROUPS = ((0, 1, 2, 6), (3, 4, 5, 7), (8, 9))
#: Encoder shapes shared by both classes: a 4 x 4 grid of 8-pixel patches, a narrow and shallow ViT.
ENCODER = {"img_size": 32, "patch_size": 8, "in_chans": 10, "channel_groups": CHANNEL_GROUPS, "channel_embed": 16,
           "embed_dim": 64, "depth": 2, "num_heads": 4, "mlp_ratio": 4}
#: The MAE's decoder: 32 wide (8 of them the decoder channel embedding, the factories' 1/4), 1 block.
DECODER = {"decoder_channel_embed": 8, "decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 4}
#: Classes of the ViT head (fMoW-Sentinel's 62); the head is not used by ``forward_features``.
NUM_CLASSES = 62
CHIPS_SHAPE = (2, 10, 32, 32)


def chips(shape: tuple[int, ...] = CHIPS_SHAPE) -> torch.Tensor:
    """Deterministic input chips in [-1, 1] from a formula (the test computes the same; they are not stored)."""
    i = np.arange(int(np.prod(shape)), dtype=np.float64)
    return torch.from_numpy(np.sin(i * 0.6180339887 + np.cos(i * 0.0123)).reshape(shape).astype(np.float32))


def _export(satmae: Path, rev: str, dest: Path) -> str:
    """Copy :data:`SATMAE_FILES` of ``satmae`` at ``rev`` (git) or as they are (a plain copy) into ``dest``."""
    git = subprocess.run(["git", "-C", str(satmae), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                         capture_output=True, text=True, check=False)
    if git.returncode == 0:
        commit = git.stdout.strip()
        tar = subprocess.run(["git", "-C", str(satmae), "archive", "--format=tar", commit, "--", *SATMAE_FILES],
                             capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
            archive.extractall(dest, filter="data")
        return commit
    for name in SATMAE_FILES:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(satmae / name, dest / name)
    return "(not a git checkout)"


def _reference_modules(satmae: Path, rev: str, dest: Path) -> tuple[object, object, object, str]:
    """SatMAE's ``models_mae_group_channels``, ``models_vit_group_channels`` and ``util.pos_embed`` modules."""
    commit = _export(satmae, rev, dest)
    # The one shim: util/pos_embed.py calls np.arange(..., dtype=np.float), an alias of the builtin float that
    # NumPy 1.24 removed; np.float = float restores it (float64, as NumPy < 1.24 read it).
    if "float" not in np.__dict__:
        np.float = float  # type: ignore[attr-defined]
    sys.path.insert(0, str(dest))
    sys.dont_write_bytecode = True
    with warnings.catch_warnings():  # torchvision 0.16's compiled ops do not load beside torch 2.13; timm only
        warnings.simplefilter("ignore")  # imports its Python transforms
        mae = importlib.import_module("models_mae_group_channels")
        vit = importlib.import_module("models_vit_group_channels")
        pos = importlib.import_module("util.pos_embed")
    for module in (mae, vit, pos):
        if not Path(module.__file__).resolve().is_relative_to(dest.resolve()):
            sys.exit(f"error: {module.__name__} was imported from {module.__file__}, not from the SatMAE export")
    return mae, vit, pos, commit


def _norm_layer() -> partial:
    """SatMAE's factories' norm (mae_vit_*_dec512d8b, vit_*_patch16): ``partial(nn.LayerNorm, eps=1e-6)``."""
    return partial(nn.LayerNorm, eps=1e-6)


def _build(mae_mod: object, vit_mod: object) -> tuple[nn.Module, nn.Module]:
    """The two SatMAE classes at :data:`ENCODER` (+ :data:`DECODER`), as the factories build them."""
    mae = mae_mod.MaskedAutoencoderGroupChannelViT(**ENCODER, **DECODER, norm_layer=_norm_layer()).eval()
    vit = vit_mod.GroupChannelsVisionTransformer(global_pool=False, qkv_bias=True, norm_layer=_norm_layer(),
                                                 num_classes=NUM_CLASSES, drop_path_rate=0.0, **ENCODER).eval()
    return mae, vit


def _non_trivial(model: nn.Module, gen: torch.Generator) -> None:
    """LayerNorm weights 1 + N(0, 0.1) and biases N(0, 0.05); every other bias N(0, 0.02); channel_embed
    + N(0, 0.02) (the MAE freezes it at sin-cos, the ViT trains it: a loader must read it, not recompute it)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.copy_(1 + 0.1 * torch.randn(module.weight.shape, generator=gen))
                module.bias.copy_(0.05 * torch.randn(module.bias.shape, generator=gen))
            elif isinstance(module, (nn.Linear, nn.Conv2d)) and module.bias is not None:
                module.bias.copy_(0.02 * torch.randn(module.bias.shape, generator=gen))
        model.channel_embed.add_(0.02 * torch.randn(model.channel_embed.shape, generator=gen))
        for token in (model.cls_token, model.mask_token):  # SatMAE draws both N(0, 0.02) already
            if not token.any():
                token.normal_(0.0, 0.02, generator=gen)


def _load_finetune(vit: nn.Module, mae_state: dict[str, torch.Tensor], pos_mod: object) -> object:
    """What main_finetune.py does with ``--finetune`` (its lines 275-310) for a pre-training checkpoint."""
    from timm.models.layers import trunc_normal_

    checkpoint_model = {k: v.clone() for k, v in mae_state.items()}
    state_dict = vit.state_dict()
    for k in ["pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "head.weight", "head.bias"]:
        if k in checkpoint_model and checkpoint_model[k].shape != state_dict[k].shape:
            del checkpoint_model[k]
    pos_mod.interpolate_pos_embed(vit, checkpoint_model)  # same 4 x 4 grid: a no-op here
    msg = vit.load_state_dict(checkpoint_model, strict=False)
    trunc_normal_(vit.head.weight, std=2e-5)
    return msg


def _identity_masking(x: torch.Tensor, mask_ratio: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``random_masking`` keeping every token in its place (SatMAE's shuffles them even at mask_ratio 0)."""
    n, length, _ = x.shape
    return x, torch.zeros(n, length), torch.arange(length).expand(n, length)


def encoder_tokens(mae: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """SatMAE's ``forward_encoder(x, 0.0)`` with its masking step keeping every token in the original order."""
    mae.random_masking = _identity_masking
    try:
        tokens, mask, _ = mae.forward_encoder(x, 0.0)
    finally:
        del mae.random_masking
    assert not mask.any()
    return tokens.contiguous()


def _unshuffled_forward_encoder(mae: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """SatMAE's own ``forward_encoder(x, 0.0)`` (shuffled order), put back in order with its ``ids_restore``."""
    tokens, mask, ids_restore = mae.forward_encoder(x, 0.0)
    assert not mask.any()
    body = torch.gather(tokens[:, 1:], 1, ids_restore.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
    return torch.cat((tokens[:, :1], body), dim=1)


def _save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(path))  # no metadata: its order varies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--satmae", type=Path, required=True, help="a SatMAE checkout (work tree or bare git dir)")
    parser.add_argument("--rev", default="HEAD", help="the SatMAE commit to read (git checkouts only)")
    parser.add_argument("--out", type=Path, default=HERE, help="where the fixture is (default: beside this file)")
    parser.add_argument("--check", action="store_true", help="reload the stored files and compare, write nothing")
    args = parser.parse_args()
    out = args.out.resolve()
    with tempfile.TemporaryDirectory(prefix="satmae-") as tmp:
        mae_mod, vit_mod, pos_mod, commit = _reference_modules(args.satmae.resolve(), args.rev, Path(tmp))
        return _check(mae_mod, vit_mod, out) if args.check else _write(mae_mod, vit_mod, pos_mod, commit, out)


def _write(mae_mod: object, vit_mod: object, pos_mod: object, commit: str, out: Path) -> int:
    import timm

    torch.manual_seed(0)
    mae, vit = _build(mae_mod, vit_mod)
    gen = torch.Generator().manual_seed(1)
    _non_trivial(mae, gen)
    msg = _load_finetune(vit, mae.state_dict(), pos_mod)
    x = chips()
    with torch.no_grad():
        plain_vit_cls = vit.forward_features(x)  # channel_cls_embed still SatMAE's zeros
        vit.channel_cls_embed.add_(0.02 * torch.randn(vit.channel_cls_embed.shape, generator=gen))  # fine-tuned
        vit_cls = vit.forward_features(x).contiguous()
        features = encoder_tokens(mae, x)
        shuffled = _unshuffled_forward_encoder(mae, x)
        norms = [m for m in mae.modules() if isinstance(m, nn.LayerNorm)]
        for m in norms:  # the same weights with torch's default epsilon: how far a 1e-5 reading lands
            m.eps = 1e-5
        other_eps = encoder_tokens(mae, x)
        for m in norms:
            m.eps = 1e-6
    out.mkdir(parents=True, exist_ok=True)
    _save(mae.state_dict(), out / "satmae_tiny.safetensors")
    _save(vit.state_dict(), out / "satmae_vit_tiny.safetensors")
    _save({"features": features, "vit_cls": vit_cls}, out / "expected_features.safetensors")
    print(f"SatMAE {commit}; torch {torch.__version__}; timm {timm.__version__}; numpy {np.__version__}")
    print(f"finetune load: missing {sorted(msg.missing_keys)}; unexpected {sorted(msg.unexpected_keys)}")
    print(f"features {tuple(features.shape)}, vit_cls {tuple(vit_cls.shape)}")
    print(f"max |unshuffled forward_encoder(x, 0.0) - features| = {(shuffled - features).abs().max().item():.3g}")
    print(f"max |vit_cls(channel_cls_embed 0) - features[:, 0]| = "
          f"{(plain_vit_cls - features[:, 0]).abs().max().item():.3g}")
    print(f"max |vit_cls - features[:, 0]| = {(vit_cls - features[:, 0]).abs().max().item():.3g}")
    print(f"max |features(eps 1e-5) - features(eps 1e-6)| = {(other_eps - features).abs().max().item():.3g}")
    return 0


def _check(mae_mod: object, vit_mod: object, out: Path) -> int:
    mae, vit = _build(mae_mod, vit_mod)
    mae.load_state_dict(load_file(str(out / "satmae_tiny.safetensors")), strict=True)
    vit.load_state_dict(load_file(str(out / "satmae_vit_tiny.safetensors")), strict=True)
    expected = load_file(str(out / "expected_features.safetensors"))
    x = chips()
    with torch.no_grad():
        got = {"features": encoder_tokens(mae, x), "vit_cls": vit.forward_features(x)}
    failed = [k for k in expected if not torch.equal(got[k], expected[k])]
    mae_state, vit_state = mae.state_dict(), vit.state_dict()
    shared = sorted(set(mae_state) & set(vit_state))
    failed += [f"vit {k}" for k in shared if not torch.equal(mae_state[k], vit_state[k])]
    for k, v in expected.items():
        print(f"{k} {tuple(v.shape)} {v.dtype}: {'equal' if torch.equal(got[k], v) else 'DIFFERENT'}")
    print(f"{len(shared)} tensors shared by the two state dicts: "
          f"{'equal' if not any(f.startswith('vit ') for f in failed) else 'DIFFERENT'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
