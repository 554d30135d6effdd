"""The training loop in one process: accumulation, divergence, metrics, evaluation, precision, resume rules."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from registry_core.training import Trainer, TrainingDiverged, epoch_order, load_checkpoint
from registry_core.training.progress import ProgressReporter


def _metrics(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _train(tiny: ModuleType, out: Path, *, dropout: float = 0.0, data: object = None, **cfg: object) -> Trainer:
    torch.manual_seed(0)
    trainer = Trainer(tiny.TinyModel(dropout=dropout), data or tiny.TinyRegression(), tiny.make_config(**cfg), out)
    trainer.fit()
    return trainer


def test_accumulation_matches_one_big_batch(tiny: ModuleType, tmp_path: Path) -> None:
    whole = _train(tiny, tmp_path / "whole", micro_batch_size=8)
    split = _train(tiny, tmp_path / "split", micro_batch_size=2)
    assert split.accum == 4 and whole.accum == 1
    a = [r["loss"] for r in _metrics(tmp_path / "whole")]
    b = [r["loss"] for r in _metrics(tmp_path / "split")]
    assert b == pytest.approx(a, rel=1e-5)
    for (name, p), q in zip(whole.model.named_parameters(), split.model.parameters()):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), name


def test_accumulation_weighs_micro_batches_by_what_they_count(tiny: ModuleType, tmp_path: Path) -> None:
    """A loss that is a mean over a varying number of targets (``loss_weight``): N micro-batches give the loss and
    gradient of the per-target mean over the whole batch, not the mean of the micro-batch means."""
    data = tiny.TinyRegression()
    counts = [int((data.y[epoch_order(64, 0, 0)[i:i + 2]] > 0).sum()) for i in range(0, 8, 2)]
    assert len(set(counts)) > 1, counts  # the first step's micro-batches count different numbers of targets
    runs = {}
    for name, micro in (("whole", 8), ("split", 2)):
        torch.manual_seed(0)
        trainer = Trainer(tiny.WeightedModel(dropout=0.0), data, tiny.make_config(micro_batch_size=micro),
                          tmp_path / name)
        trainer.fit()
        runs[name] = trainer
    a = [r["loss"] for r in _metrics(tmp_path / "whole")]
    b = [r["loss"] for r in _metrics(tmp_path / "split")]
    assert b == pytest.approx(a, rel=1e-5)
    assert [r["grad_norm"] for r in _metrics(tmp_path / "split")] == pytest.approx(
        [r["grad_norm"] for r in _metrics(tmp_path / "whole")], rel=1e-5)
    for (name, p), q in zip(runs["whole"].model.named_parameters(), runs["split"].model.parameters()):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), name


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny: ModuleType, tmp_path: Path) -> None:
    # Put an inf sample at stream position 41: inside step 6 (positions 40-47) of batch 8.
    poison = int(epoch_order(64, 0, 0)[41])
    torch.manual_seed(0)
    out = tmp_path / "run"
    trainer = Trainer(tiny.TinyModel(), tiny.TinyRegression(poison=poison), tiny.make_config(checkpoint_every=4), out)
    with pytest.raises(TrainingDiverged, match=r"diverged at step 6: loss nan") as info:
        trainer.fit()
    assert "last good checkpoint" in str(info.value) and "(step 4) is untouched" in str(info.value)
    assert info.value.step == 6
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["step"] == 4 and all(torch.isfinite(v).all() for v in ckpt["model"].values())
    assert [r["step"] for r in _metrics(out)] == [1, 2, 3, 4, 5]
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())  # the bad step was not applied


def test_nan_before_any_checkpoint_says_so(tiny: ModuleType, tmp_path: Path) -> None:
    poison = int(epoch_order(64, 0, 0)[3])
    torch.manual_seed(0)
    trainer = Trainer(tiny.TinyModel(), tiny.TinyRegression(poison=poison), tiny.make_config(), tmp_path)
    with pytest.raises(TrainingDiverged, match=r"at step 1: .*no checkpoint had been written yet"):
        trainer.fit()
    assert not (tmp_path / "checkpoints" / "last.pt").exists()


def test_metrics_lines_and_plain_log(tiny: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    trainer = Trainer(
        tiny.TinyModel(),
        tiny.TinyRegression(),
        tiny.make_config(steps=7, log_every=3, eval_every=2, peak_tflops=1.0),
        tmp_path,
        val_data=tiny.TinyRegression(10, seed=5),
    )
    result = trainer.fit()
    records = _metrics(tmp_path)
    # step 0: the untrained model's validation; log steps 3, 6, last; eval steps 2, 4, 6, last
    assert [r["step"] for r in records] == [0, 2, 3, 4, 6, 7]
    expect = {"step", "loss", "lr", "grad_norm", "units_per_s", "units", "samples", "elapsed", "mfu", "mae"}
    assert set(records[2]) == expect  # "mae": the model's own metric, averaged over micro-batches
    assert set(records[0]) == set(records[1]) == {"step", "val_loss", "val_mae", "elapsed"}
    assert records[2]["units"] == "tokens" and records[2]["samples"] == 24
    assert records[2]["mfu"] == pytest.approx(1000.0 * records[2]["units_per_s"] / 1e12)  # type: ignore[operator]
    assert records[-1]["val_loss"] == pytest.approx(result.val["loss"])  # type: ignore[index]
    err = capsys.readouterr().err
    assert "train: step 3/7 | loss " in err and "tokens/s" in err and "eta" in err
    assert result.step == 7 and result.samples == 56 and result.units_per_s and result.units_per_s > 0
    assert result.checkpoint == tmp_path / "checkpoints" / "last.pt"  # written at the end with checkpoint_every=0


def test_a_model_reporting_its_loss_as_a_metric_is_not_counted_twice(tiny: ModuleType, tmp_path: Path) -> None:
    class LossToo(tiny.TinyModel):  # type: ignore[name-defined]
        def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            loss, metrics = super().forward(batch)
            return loss, {**metrics, "loss": loss.detach()}  # as mae and masked-lm do

    torch.manual_seed(0)
    val = tiny.TinyRegression(10, seed=5)
    trainer = Trainer(LossToo(dropout=0.0), tiny.TinyRegression(), tiny.make_config(steps=1), tmp_path, val_data=val)
    trainer.model.eval()
    with torch.no_grad():
        expected = sum(float(trainer.model({k: v[None] for k, v in val[i].items()})[0]) for i in range(len(val))) / len(val)
    assert trainer.evaluate()["loss"] == pytest.approx(expected, rel=1e-5)


def test_units_fall_back_to_samples_and_chips(tiny: ModuleType, tmp_path: Path) -> None:
    class NoTokens(tiny.TinyModel):  # type: ignore[name-defined]
        tokens_per_sample = None

    t = Trainer(NoTokens(), tiny.TinyRegression(), tiny.make_config(steps=1), tmp_path / "a")
    assert t.units == "samples"
    t = Trainer(tiny.TinyModel(), tiny.TinyRegression(), tiny.make_config(steps=1), tmp_path / "b", units="chips")
    t.fit()
    assert _metrics(tmp_path / "b")[0]["units"] == "chips" and "mfu" not in _metrics(tmp_path / "b")[0]


def test_progress_bar_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    bar = ProgressReporter(total=10, initial=2, units="chips", enabled=True, stream=term)
    bar.step(3, 0.5, 1234.0)
    bar.log({"step": 3, "loss": 0.5}, eta_s=4.0)  # the bar shows it: no extra plain line
    bar.close()
    text = term.getvalue()
    assert "3/10" in text and "loss=0.5000" in text and "chips/s=1,234" in text and "train: step" not in text


def test_evaluate_is_the_mean_over_a_full_pass(tiny: ModuleType, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = tiny.TinyModel(dropout=0.5)
    val = tiny.TinyRegression(10, seed=7)  # micro-batches of 4, 4 and 2
    trainer = Trainer(model, tiny.TinyRegression(), tiny.make_config(micro_batch_size=4), tmp_path)
    got = trainer.evaluate(val)
    model.eval()
    with torch.no_grad():
        loss, metrics = model({"x": val.x, "y": val.y})
    assert got["loss"] == pytest.approx(float(loss), rel=1e-5)
    assert got["mae"] == pytest.approx(float(metrics["mae"]), rel=1e-5)
    assert model.training is False or trainer.model.training  # train mode is put back
    with pytest.raises(ValueError, match="evaluate\\(\\) needs val_data"):
        trainer.evaluate()


def test_bf16_autocast_runs_on_cpu(tiny: ModuleType, tmp_path: Path) -> None:
    seen: list[torch.dtype] = []

    class Probe(tiny.TinyModel):  # type: ignore[name-defined]
        def forward(self, batch: dict[str, torch.Tensor]) -> object:
            seen.append(self.inp(batch["x"]).dtype)
            return super().forward(batch)

    torch.manual_seed(0)
    result = Trainer(Probe(), tiny.TinyRegression(), tiny.make_config(steps=3, precision="bf16"), tmp_path).fit()
    assert set(seen) == {torch.bfloat16} and result.loss is not None
    assert all(p.dtype == torch.float32 for p in load_checkpoint(result.checkpoint)["model"].values())  # type: ignore[arg-type]


def test_workers_load_the_same_batches(tiny: ModuleType, tmp_path: Path) -> None:
    _train(tiny, tmp_path / "w0", steps=4)
    _train(tiny, tmp_path / "w2", steps=4, num_workers=2)
    assert [r["loss"] for r in _metrics(tmp_path / "w2")] == [r["loss"] for r in _metrics(tmp_path / "w0")]


def test_training_learns(tiny: ModuleType, tmp_path: Path) -> None:
    trainer = _train(tiny, tmp_path, steps=60, lr=1e-2, min_lr=1e-3, log_every=60)
    val = trainer.evaluate(tiny.TinyRegression())
    torch.manual_seed(0)
    untrained = Trainer(tiny.TinyModel(dropout=0), tiny.TinyRegression(), tiny.make_config(), tmp_path / "x")
    assert val["loss"] < 0.5 * untrained.evaluate(tiny.TinyRegression())["loss"]


def test_compiled_model_still_saves_clean_keys(tiny: ModuleType, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.compile(tiny.TinyModel(), backend="eager")
    Trainer(model, tiny.TinyRegression(), tiny.make_config(steps=2), tmp_path).fit()  # type: ignore[arg-type]
    keys = list(load_checkpoint(tmp_path / "checkpoints" / "last.pt")["model"])
    assert keys == list(tiny.TinyModel().state_dict())


def test_resume_rules(tiny: ModuleType, tmp_path: Path) -> None:
    done = _train(tiny, tmp_path, steps=4)
    assert done.step == 4
    torch.manual_seed(0)
    again = Trainer(tiny.TinyModel(), tiny.TinyRegression(), tiny.make_config(steps=4), tmp_path).fit(resume=True)
    assert again.resumed_from == 4 and again.loss is None and len(_metrics(tmp_path)) == 4  # nothing left to do
    with pytest.warns(UserWarning, match="scheduled for 4 steps, this run for 6"):
        longer = Trainer(tiny.TinyModel(), tiny.TinyRegression(), tiny.make_config(steps=6), tmp_path).fit(resume=True)
    assert longer.step == 6 and [r["step"] for r in _metrics(tmp_path)] == [1, 2, 3, 4, 5, 6]
    other = Trainer(tiny.TinyModel(), tiny.TinyRegression(), tiny.make_config(steps=6, batch_size=16), tmp_path)
    with pytest.raises(ValueError, match="batch_size 8, this run has 16"):
        other.fit(resume=True)
    wrong = Trainer(nn.Sequential(nn.Linear(8, 1)), tiny.TinyRegression(), tiny.make_config(steps=6), tmp_path)
    with pytest.raises(ValueError, match="does not fit the model"):
        wrong.fit(resume=True)
    fresh = Trainer(tiny.TinyModel(), tiny.TinyRegression(), tiny.make_config(steps=2), tmp_path / "new")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert fresh.fit(resume=True).resumed_from is None
    assert any("no checkpoint at" in str(w.message) for w in caught)


def test_bad_inputs_are_named(tiny: ModuleType, tmp_path: Path) -> None:
    class Bad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(8, 1)

        def forward(self, batch: dict[str, torch.Tensor]) -> object:
            return {"loss": self.lin(batch["x"]).mean()}

    with pytest.raises(TypeError, match="model Bad returned dict; expected a scalar loss tensor"):
        Trainer(Bad(), tiny.TinyRegression(), tiny.make_config(), tmp_path).fit()
    with pytest.raises(TypeError, match="train_data must be a map-style dataset"):
        Trainer(tiny.TinyModel(), iter([1, 2]), tiny.make_config(), tmp_path)
    with pytest.raises(ValueError, match="train_data is empty"):
        Trainer(tiny.TinyModel(), [], tiny.make_config(), tmp_path)
    with pytest.raises(TypeError, match="needs a TrainConfig"):
        Trainer(tiny.TinyModel(), tiny.TinyRegression(), {"steps": 3}, tmp_path)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*torch.jit.script_method.*:DeprecationWarning")  # inside torch's inductor
def test_torch_compile_option(tiny: ModuleType, tmp_path: Path) -> None:
    eager = _train(tiny, tmp_path / "eager", steps=3)
    compiled = _train(tiny, tmp_path / "compiled", steps=3, compile=True)
    assert compiled._train_model is not compiled.model
    a = [r["loss"] for r in _metrics(tmp_path / "eager")]
    b = [r["loss"] for r in _metrics(tmp_path / "compiled")]
    assert b == pytest.approx(a, rel=1e-4)
    keys = list(load_checkpoint(tmp_path / "compiled" / "checkpoints" / "last.pt")["model"])
    assert keys == list(eager.model.state_dict())


def test_count_metrics_are_integer_sums_and_the_loss_is_weighted_by_its_count(tiny: ModuleType, tmp_path: Path) -> None:
    """An objective's counts (an LM's tokens) add up over micro-batches and the pass; its loss is a mean over
    what ``loss_weight`` counts, so validation gives the mean over the whole split, not over batches."""
    class KeptLoss(tiny.CountingModel):  # type: ignore[name-defined]
        loss_weight = "kept"

        def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            _, metrics = super().forward(batch)
            err = (self.out(self.drop(torch.nn.functional.gelu(self.norm(self.inp(batch["x"]))))) - batch["y"])[:, 0]
            kept = batch["y"][:, 0] > 0
            return (err.square() * kept).sum() / kept.sum().clamp(min=1), metrics  # a mean over the kept rows

    torch.manual_seed(0)
    model = KeptLoss(dropout=0.0)
    val = tiny.TinyRegression(10, seed=7)  # micro-batches of 4, 4 and 2, each keeping a different number of rows
    config = tiny.make_config(steps=2, batch_size=8, micro_batch_size=2, log_every=1)
    trainer = Trainer(model, tiny.TinyRegression(), config, tmp_path, val_data=val)
    trainer.fit()
    train = [r for r in _metrics(tmp_path) if "rows" in r]
    assert [r["rows"] for r in train] == [8, 8] and all(isinstance(r["kept"], int) for r in train)
    got = trainer.evaluate()
    model.eval()
    with torch.no_grad():
        kept = val.y[:, 0] > 0
        pred = model.out(torch.nn.functional.gelu(model.norm(model.inp(val.x))))[:, 0]
        direct = float((pred - val.y[:, 0])[kept].square().mean())
    assert got["rows"] == 10 and got["kept"] == int(kept.sum()) and isinstance(got["kept"], int)
    assert 0 < got["kept"] < 10
    assert got["loss"] == pytest.approx(direct, rel=1e-5)
