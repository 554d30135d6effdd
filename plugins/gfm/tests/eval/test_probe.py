"""The linear probe of the GFM evaluators: MAE's protocol on frozen features, macro-F1, feature pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from registry_gfm.evaluators._probe import features, fit_linear_probe, macro_f1

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _separable(n: int, classes: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(99)) * 4
    y = torch.randint(0, classes, (n,), generator=g)
    x = centres[y] + torch.randn(n, dim, generator=g) + 50.0  # far from 0: the batch norm has work to do
    return x, y


def test_probe_separable_features() -> None:
    tx, ty = _separable(400, 4, 16, 0)
    vx, vy = _separable(200, 4, 16, 1)
    res = fit_linear_probe(tx, ty, vx, vy, classes=4, epochs=20, lr=0.1, batch_size=64, seed=0)
    assert res.accuracy >= 0.97 and res.train_accuracy >= 0.97
    assert res.macro_f1 >= 0.97
    assert set(res.per_class_f1) == {0, 1, 2, 3}


def test_probe_random_labels_is_near_chance() -> None:
    g = torch.Generator().manual_seed(3)
    tx, vx = torch.randn(300, 32, generator=g), torch.randn(400, 32, generator=g)
    ty, vy = torch.randint(0, 4, (300,), generator=g), torch.randint(0, 4, (400,), generator=g)
    res = fit_linear_probe(tx, ty, vx, vy, classes=4, epochs=30, lr=0.1, batch_size=32, seed=0)
    assert 0.15 <= res.accuracy <= 0.36  # chance is 0.25 (std about 0.02 over 400 samples)
    assert res.train_accuracy > res.accuracy  # it memorises some training noise, which does not transfer


def test_probe_is_deterministic_and_leaves_global_rng() -> None:
    tx, ty = _separable(100, 3, 8, 0)
    vx, vy = _separable(50, 3, 8, 1)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = fit_linear_probe(tx, ty, vx, vy, classes=3, epochs=3, lr=0.05, batch_size=16, seed=7)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = fit_linear_probe(tx, ty, vx, vy, classes=3, epochs=3, lr=0.05, batch_size=16, seed=7)
    assert a == b
    assert a.probe is not None and b.probe is not None
    for p, q in zip(a.probe.parameters(), b.probe.parameters()):
        assert torch.equal(p, q)


def test_probe_accepts_numpy_and_odd_batches() -> None:
    tx, ty = _separable(65, 2, 4, 0)  # 65 = 2 * 32 + 1: a last batch of one is dropped, not batch-normed
    vx, vy = _separable(20, 2, 4, 1)
    res = fit_linear_probe(tx.numpy(), ty.numpy(), vx.numpy(), vy.numpy(), classes=2, epochs=5, batch_size=32)
    assert res.accuracy > 0.9


def test_probe_argument_errors() -> None:
    tx, ty = _separable(20, 2, 4, 0)
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        fit_linear_probe(tx, ty + 1, tx, ty, classes=2, epochs=1)
    with pytest.raises(ValueError, match="2 classes"):
        fit_linear_probe(tx, ty, tx, ty, classes=1, epochs=1)
    with pytest.raises(ValueError, match="dims"):
        fit_linear_probe(tx, ty, tx[:, :3], ty, classes=2, epochs=1)
    with pytest.raises(ValueError, match="labels for"):
        fit_linear_probe(tx, ty[:5], tx, ty, classes=2, epochs=1)
    with pytest.raises(ValueError, match="no validation"):
        fit_linear_probe(tx, ty, tx[:0], ty[:0], classes=2, epochs=1)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        fit_linear_probe(tx[:, None], ty, tx, ty, classes=2, epochs=1)


def test_macro_f1_by_hand() -> None:
    truth = [0, 0, 0, 1, 1, 2]
    pred = [0, 0, 1, 1, 2, 2]
    # class 0: TP 2, FP 0, FN 1 -> 4/5; class 1: TP 1, FP 1, FN 1 -> 2/4; class 2: TP 1, FP 1, FN 0 -> 2/3
    # class 3 is in neither truth nor prediction: left out of the average
    macro, per = macro_f1(truth, pred, classes=4)
    assert per == pytest.approx({0: 0.8, 1: 0.5, 2: 2 / 3})
    assert macro == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    # a class predicted but never true counts, with F1 0
    macro, per = macro_f1([0, 0], [0, 3], classes=4)
    assert per == pytest.approx({0: 2 / 3, 3: 0.0})
    assert macro == pytest.approx(1 / 3)
    assert macro_f1([], [], classes=3) == (0.0, {})
    with pytest.raises(ValueError, match="predictions"):
        macro_f1([0, 1], [0], classes=2)
    # tensors too
    assert macro_f1(torch.tensor(truth), np.array(pred), 4)[0] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


class _Encoder(nn.Module):
    """(B, C, T, H, W) -> (B, prefix + N, D): token j holds j + the mean pixel, so pooling is checkable."""

    def __init__(self, patch: int, prefix: int | None, declare: bool) -> None:
        super().__init__()
        self.patch, self.tubelet = patch, 1
        self.n_prefix = prefix or 0
        if declare and prefix is not None:
            self.prefix_tokens = prefix
        self.lin = nn.Linear(1, 1)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        if chips.ndim == 4:
            chips = chips.unsqueeze(2)
        b, _, t, h, w = chips.shape
        n = t * (h // self.patch) * (w // self.patch) + self.n_prefix
        base = chips.mean(dim=(1, 2, 3, 4)).view(b, 1, 1)
        return base + torch.arange(n, dtype=torch.float32).view(1, n, 1).expand(b, n, 3)


@pytest.mark.parametrize("declare", [True, False])
def test_features_pooling(declare: bool) -> None:
    chips = torch.ones(2, 3, 1, 8, 8)
    enc = _Encoder(patch=4, prefix=1, declare=declare)  # 4 patches + cls
    enc.train()
    cls = features(enc, chips, "cls")
    assert cls.shape == (2, 3) and torch.allclose(cls, torch.full((2, 3), 1.0))
    assert enc.training  # mode restored
    mean = features(enc, chips, "mean")
    assert torch.allclose(mean, torch.full((2, 3), 1.0 + 2.5))  # tokens 1..4 -> mean 2.5
    assert torch.allclose(features(enc, chips[:, :, 0], "mean"), mean)  # (B, C, H, W) too


def test_features_without_cls() -> None:
    chips = torch.zeros(1, 2, 8, 8)
    enc = _Encoder(patch=4, prefix=None, declare=False)
    assert torch.allclose(features(enc, chips, "mean"), torch.full((1, 3), 1.5))
    with pytest.raises(ValueError, match="cls token"):
        features(enc, chips, "cls")
    with pytest.raises(ValueError, match="pool"):
        features(enc, chips, "max")  # type: ignore[arg-type]
    assert torch.allclose(features(enc, chips, "mean", prefix_tokens=2), torch.full((1, 3), 2.5))
