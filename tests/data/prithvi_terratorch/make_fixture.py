"""Regenerate the Prithvi parity fixture from TerraTorch's own Prithvi module (see README.md beside this file).

Run it in a throw-away environment that has TerraTorch's model code (not in our test extra: timm needs
torchvision, which does not install beside our CPU torch):

    python -m venv /tmp/tt && /tmp/tt/bin/pip install torch torchvision timm einops safetensors numpy
    /tmp/tt/bin/pip install --no-deps terratorch==1.2.13
    /tmp/tt/bin/python tests/data/prithvi_terratorch/make_fixture.py

It writes ``prithvi_v2_tiny.safetensors`` (TerraTorch ``PrithviMAE.state_dict()``, the Prithvi-EO-2.0 layout)
and ``expected_features.safetensors`` (``PrithviViT.forward_features(chips)[-1]`` on :func:`chips`).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

HERE = Path(__file__).resolve().parent
#: Model shapes: Prithvi's patch size, frames and 224-pixel grid, a narrow and shallow encoder and decoder.
SHAPES = {"img_size": 224, "patch_size": (1, 16, 16), "num_frames": 3, "in_chans": 6, "embed_dim": 64, "depth": 2,
          "num_heads": 4, "decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 4, "mlp_ratio": 4.0}
CHIPS_SHAPE = (2, 6, 3, 224, 224)


def chips(shape: tuple[int, ...] = CHIPS_SHAPE) -> torch.Tensor:
    """Deterministic input chips in [-1, 1] from a formula (the test computes the same; no 7 MB input file)."""
    i = np.arange(int(np.prod(shape)), dtype=np.float64)
    return torch.from_numpy(np.sin(i * 0.6180339887 + np.cos(i * 0.0123)).reshape(shape).astype(np.float32))


def _reference_module() -> object:
    """TerraTorch's ``prithvi_mae`` module, loaded from its file (the package __init__ imports far more)."""
    spec = importlib.util.find_spec("terratorch")
    if spec is None or spec.origin is None:
        sys.exit("error: terratorch is not installed here; see this script's docstring")
    path = Path(spec.origin).parent / "models" / "backbones" / "prithvi_mae.py"
    module_spec = importlib.util.spec_from_file_location("terratorch_prithvi_mae", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _non_trivial(model: nn.Module, gen: torch.Generator) -> None:
    """LayerNorm weights 1 + N(0, 0.1) and biases N(0, 0.05); every other bias N(0, 0.02) (the init zeroes them)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.copy_(1 + 0.1 * torch.randn(module.weight.shape, generator=gen))
                module.bias.copy_(0.05 * torch.randn(module.bias.shape, generator=gen))
            elif isinstance(module, (nn.Linear, nn.Conv3d)) and module.bias is not None:
                module.bias.copy_(0.02 * torch.randn(module.bias.shape, generator=gen))


def main() -> int:
    ref = _reference_module()
    torch.manual_seed(0)
    model = ref.PrithviMAE(**SHAPES).eval()  # norm_layer: TerraTorch's default, nn.LayerNorm
    _non_trivial(model, torch.Generator().manual_seed(1))
    x = chips()
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    with torch.no_grad():
        features = model.encoder.forward_features(x)[-1].contiguous()
        reference_eps = sorted({m.eps for m in norms})
        for m in norms:  # the same weights with timm's ViT epsilon: how far a 1e-6 reading lands
            m.eps = 1e-6
        other = model.encoder.forward_features(x)[-1]
    for m in norms:
        m.eps = reference_eps[0]
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(HERE / "prithvi_v2_tiny.safetensors"))  # no metadata: its order in the header varies
    save_file({"features": features}, str(HERE / "expected_features.safetensors"))
    print(f"torch {torch.__version__}; LayerNorm eps of the reference: {reference_eps}")
    print(f"features {tuple(features.shape)}; max |features(eps 1e-6) - features(reference eps)| = "
          f"{(other - features).abs().max().item():.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
