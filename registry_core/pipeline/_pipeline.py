"""A composed pipeline: its config form, its lock, and (once built) its components and model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Final

from registry_core._contracts import ComposedSlot, rewire
from registry_core._errors import ConfigError, ConfigIssue
from registry_core._members import check_members
from registry_core._registry import Registry
from registry_core._spec import CARD_SOURCE
from registry_core.pipeline import _lock, _persist
from registry_core.pipeline._compose import Composition, apply_overrides, compose_config, load_toml
from registry_core.pipeline._lock import LockMismatch, expand_files
from registry_core.pipeline._run import RunResult, run_pipeline
from registry_core.pipeline._toml import dumps
from registry_core.pipeline._train_config import TrainConfig

__all__ = ["LockMismatch", "Pipeline", "compose"]

#: Slots built before the tokenizer is trained and the data prepared; the others are wired with what they learned.
_DATA_SIDE: Final = ("data", "tokenizer", "weights")


def _config_dict(config: Any, skip: Iterable[str] = ()) -> dict[str, Any]:
    """A config instance as plain TOML-able values (None and ``skip`` dropped, paths as strings)."""
    if config is None:
        return {}
    out: dict[str, Any] = {}
    skipped = set(skip)
    for f in fields(config):
        value = getattr(config, f.name)
        if value is None or f.name in skipped:
            continue
        if hasattr(value, "__dataclass_fields__"):
            value = _config_dict(value)
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def compose(config: Mapping[str, Any] | str | Path, registry: Registry | None = None) -> Pipeline:
    """Resolve, validate, wire and check a pipeline config (a dict or a TOML file) into a Pipeline.

    Raises ConfigError listing every issue; imports no component code.
    """
    return Pipeline.from_composition(compose_config(config, registry))


@dataclass
class _Built:
    components: dict[str, Any]
    evaluators: list[Any]
    model: Any


class Pipeline:
    """Slots resolved to specs with validated, wired configs; ``build()`` makes the components.

    Build protocol (each step only where the component has the method): ``data.attach_run_dir(folder)``
    when ``run_dir`` is set (relative outputs then land inside the run folder); ``data.attach_tokenizer(tok)``;
    ``data.attach_weights(weights)``;
    a tokenizer without a vocabulary (``tok.trained`` false) trains on ``data.train_tokenizer_texts()``;
    ``data.prepare()``; the values the tokenizer resolved (``tok.resolved_config()``: the true ``vocab_size``)
    are wired again into the other slots, which are built only then; ``tok.embedding(embed_dim)``;
    ``objective.bind(parts)``; ``weights.load_into(parts)``. Training and evaluation ask
    ``data.has_split(split)`` when the source has it (``val_fraction = 0``: no validation).
    """

    def __init__(
        self,
        slots: Mapping[str, ComposedSlot],
        evaluators: Iterable[ComposedSlot],
        train: TrainConfig,
        registry: Registry,
        name: str | None = None,
        description: str | None = None,
        source: Path | None = None,
    ) -> None:
        self.slots = dict(slots)
        self.evaluator_slots = list(evaluators)
        self.train = train
        self.registry = registry
        self.name = name
        self.description = description
        self.source = source
        #: The folder of the last ``fit`` (or a loaded pipeline's folder): evaluators write files there.
        self.run_dir: Path | None = None
        #: Whether evaluators may write to absolute paths outside ``run_dir`` (``run --outputs-anywhere``): off, since
        #: a resumed run's config may come from a run folder from elsewhere.
        self.outputs_anywhere = False
        #: A loaded pipeline's folder: every build fills the model with its saved weights, not a fresh init.
        self._saved_weights: Path | None = None
        self._built: _Built | None = None

    # -- config form ---------------------------------------------------------------------------

    @classmethod
    def from_composition(cls, c: Composition) -> Pipeline:
        return cls(c.slots, c.evaluators, c.train, c.registry, c.name, c.description, c.source)

    @classmethod
    def from_toml(cls, path: str | Path, registry: Registry | None = None, overrides: Iterable[str] = ()) -> Pipeline:
        """Compose the pipeline in a TOML file, with optional ``slot.key=value`` overrides."""
        config = apply_overrides(load_toml(path), list(overrides))
        pipeline = compose(config, registry)
        pipeline.source = Path(path)
        return pipeline

    def to_config(self) -> dict[str, Any]:
        """The config form (qualified ids, every option with a value); compose(to_config()) is equal."""
        out: dict[str, Any] = {}
        if self.name:
            out["name"] = self.name
        if self.description:
            out["description"] = self.description
        for slot, s in self.slots.items():
            out[slot] = self._slot_config(s)
        if self.evaluator_slots:
            out["evaluators"] = [self._slot_config(s) for s in self.evaluator_slots]
        out["train"] = _config_dict(self.train)
        return out

    def _slot_config(self, s: ComposedSlot) -> dict[str, Any]:
        """One slot's table: values a built component resolved (``resolved_config()``, e.g. the true
        vocabulary size) win; wired values are left out, since composing derives them again."""
        config = s.config
        comp = self._built.components.get(s.slot) if self._built else None
        if comp is not None and hasattr(comp, "resolved_config"):
            config = comp.resolved_config()
        return {"use": s.spec.id, **_config_dict(config, skip=set(s.wired) - set(s.options))}

    def to_toml(self) -> str:
        return dumps(self.to_config())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pipeline) and self.to_config() == other.to_config()

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={s.spec.id}" for k, s in self.slots.items())
        return f"<Pipeline {self.name or ''} {parts}>".replace("  ", " ")

    def all_slots(self) -> list[ComposedSlot]:
        return [*self.slots.values(), *self.evaluator_slots]

    def describe(self) -> list[dict[str, Any]]:
        """Each slot: qualified id, provider, and the values wired into it (for ``check``)."""
        rows = []
        for s in self.all_slots():
            rows.append({
                "slot": s.slot,
                "kind": s.kind,
                "id": s.spec.id,
                "provider": f"{s.spec.distribution or s.spec.plugin} {s.spec.version or ''}".strip(),
                "wired": {k: (getattr(s.config, k), src) for k, src in s.wired.items()},
                "options": _config_dict(s.config),
            })
        return rows

    def files(self) -> dict[str, Path]:
        """Tokenizer and weights files in use: built components' ``files()``, else their ``path`` options."""
        out: dict[str, Path] = {}
        for slot in ("tokenizer", "weights"):
            s = self.slots.get(slot)
            if s is None:
                continue
            comp = self._built.components.get(slot) if self._built else None
            listed = list(comp.files()) if comp is not None and hasattr(comp, "files") else []
            if not listed and getattr(s.config, "path", None):
                listed = [s.config.path]
            out.update(expand_files(slot, [Path(x) for x in listed]))
        return out

    def lock(self, files: Mapping[str, Path] | None = None, root: Path | None = None) -> dict[str, Any]:
        """Every component's qualified id, provider distribution and version, file hashes, and (once built) the
        data source's ``fingerprint()`` when it has one."""
        return _lock.make_lock(self.all_slots(), self.files() if files is None else files, root,
                               self.data_fingerprint(), self.hub_sources())

    def hub_sources(self) -> dict[str, dict[str, Any]]:
        """Slot -> what its built component pulled from a hub (repo, revision, commit, each file's sha256)."""
        out: dict[str, dict[str, Any]] = {}
        for slot, comp in (self._built.components.items() if self._built else ()):
            pulled = getattr(comp, "pulled", None)
            if pulled is not None and hasattr(pulled, "as_dict"):
                record = pulled.as_dict()
                record["files"] = {f["name"]: {"sha256": f["sha256"], "size": f["size"]} for f in record["files"]}
                out[slot] = record
        return out

    def data_fingerprint(self) -> dict[str, Any] | None:
        """What the built data source trains on (its ``fingerprint()``), or None (not built, or no fingerprint)."""
        source = self._built.components.get("data") if self._built else None
        found = getattr(source, "fingerprint", None)
        return dict(found()) if callable(found) else None

    def check_lock(self, lock: Mapping[str, Any], strict: bool = False) -> list[str]:
        """Compare a recorded lock with what is installed now; warn (or raise LockMismatch when strict)."""
        return _lock.check_lock(lock, strict=strict)

    # -- building and running --------------------------------------------------------------------

    @property
    def built(self) -> bool:
        return self._built is not None

    def _need_built(self) -> _Built:
        if self._built is None:
            self.build()
        assert self._built is not None
        return self._built

    def component(self, slot: str) -> Any:
        """The built component in ``slot`` (builds the pipeline on first use)."""
        return self._need_built().components[slot]

    @property
    def data(self) -> Any:
        return self.component("data")

    @property
    def tokenizer(self) -> Any:
        return self.component("tokenizer")

    @property
    def objective(self) -> Any:
        return self.component("objective")

    @property
    def model(self) -> Any:
        return self._need_built().model

    @property
    def parts(self) -> Any:
        return self.model.parts

    @property
    def evaluators(self) -> list[Any]:
        return self._need_built().evaluators

    def embed_dim(self) -> int:
        dim = self.slots["backbone"].value("embed_dim")
        if not isinstance(dim, int):
            raise ConfigError([ConfigIssue("backbone", "embed_dim", f"{self.slots['backbone'].label} does not provide embed_dim")])
        return dim

    def build(self, prepare: bool = True) -> Pipeline:
        """Build every component, prepare the data, and assemble the model.

        A pipeline from :meth:`load` builds again with its saved weights (a second build never silently
        re-initialises a trained model); a composed one starts from the seeded initialisation each time.
        """
        from registry_core.pipeline._model import PipelineModel
        from registry_core.training import seed_everything

        seed_everything(self.train.seed)  # the same initial weights on every rank and in every rerun
        # The data side first: a trained or loaded tokenizer knows values (vocab_size) the rest is wired with.
        comps = {slot: self._build_slot(s) for slot, s in self.slots.items() if slot in _DATA_SIDE}
        data, tok = comps["data"], comps["tokenizer"]
        if self.run_dir is not None and hasattr(data, "attach_run_dir"):
            data.attach_run_dir(self.run_dir)
        if hasattr(data, "attach_tokenizer"):
            data.attach_tokenizer(tok)
        if "weights" in comps and hasattr(data, "attach_weights"):
            data.attach_weights(comps["weights"])  # e.g. normalise imagery with the weights' own mean / std
        if prepare:
            if getattr(tok, "trained", True) is False and hasattr(data, "train_tokenizer_texts"):
                tok.train(data.train_tokenizer_texts())
            data.prepare()
        self._rewire_from(tok)
        comps.update({slot: self._build_slot(s) for slot, s in self.slots.items() if slot not in comps})
        embed = tok.embedding(self.embed_dim())
        model = PipelineModel(embed, comps.get("positional"), comps["backbone"], comps["objective"], comps.get("head"))
        tokens = self._tokens_per_sample(comps)
        flops = getattr(comps["backbone"], "flops_per_token", None)
        if tokens is not None:
            model.tokens_per_sample = tokens
            if callable(flops):
                model.flops_per_token = float(flops(tokens))
        model.sample_unit = str(getattr(data, "sample_unit", "samples"))
        if "weights" in comps:
            comps["weights"].load_into(model.parts)
        if self._saved_weights is not None:
            _persist.load_weights(model, self._saved_weights)
        evaluators = [self._build_slot(s) for s in self.evaluator_slots]
        self._built = _Built(comps, evaluators, model)
        return self

    def _rewire_from(self, tok: Any) -> None:
        """Wire the rest with the values the built tokenizer resolved (a vocabulary trained on a small corpus
        has fewer tokens than asked for); a value the user set that now disagrees is a ConfigError."""
        s = self.slots["tokenizer"]
        if not hasattr(tok, "resolved_config"):
            return
        everything = {x.slot: x for x in self.all_slots()}
        _, issues = rewire(everything, replace(s, config=tok.resolved_config()), self.registry.ports())
        if issues:
            raise ConfigError(issues)

    def _build_slot(self, s: ComposedSlot) -> Any:
        """Build one slot's component and check it has every member of its kind's interface."""
        component = self.registry.build_spec(s.spec, s.config)
        kind = self.registry.kinds().get(s.kind)
        if kind is not None:
            check_members(component, s.spec, kind, slot=s.slot)
        return component

    def _tokens_per_sample(self, comps: Mapping[str, Any]) -> int | None:
        """Tokens one sample becomes: the tokenizer's or data's ``tokens_per_sample`` (patches per chip),
        else the data's ``seq_len`` port (text windows); None when no component says."""
        for comp in (comps["tokenizer"], comps["data"]):
            n = getattr(comp, "tokens_per_sample", None)
            n = n() if callable(n) else n
            if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                return n
        seq_len = self.slots["data"].value("seq_len")
        return seq_len if isinstance(seq_len, int) else None

    def trainer(self, out_dir: str | Path) -> Any:
        """A Trainer over this pipeline's model and data (imports torch).

        Throughput is counted in tokens when the components say how many a sample holds (MFU then
        follows from the backbone's ``flops_per_token``), else in the data's ``sample_unit`` (chips).
        """
        from registry_core.training import Trainer

        built = self._need_built()
        data = built.components["data"]
        units = "tokens" if built.model.tokens_per_sample else built.model.sample_unit
        val = data.dataset("val") if self.has_split("val") else None  # none: training skips validation
        return Trainer(built.model, data.dataset("train"), self.train, Path(out_dir), val_data=val, units=units)

    def has_split(self, split: str) -> bool:
        """Whether the data source serves ``split`` (its ``has_split``; a source without one serves every split)."""
        check = getattr(self._need_built().components["data"], "has_split", None)
        return bool(check(split)) if callable(check) else True

    def fit(self, out_dir: str | Path, resume: bool = False) -> Any:
        """Train for ``train.steps`` steps into ``out_dir`` (metrics.jsonl, checkpoints/, config, lock)."""
        out = Path(out_dir)
        self.run_dir = out
        trainer = self.trainer(out)
        # the config is written once the run folder's checkpoint and log were read: a bad one leaves it as it was
        write = (lambda: self.write_config(out)) if trainer.ctx.is_main else None
        with trainer:
            return trainer.fit(resume=resume, on_ready=write)

    def run(self, out_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
            outputs_anywhere: bool = False) -> RunResult:
        """Everything ``python -m registry_core run`` does: prepare ``out_dir``, build, train, evaluate, save.

        ``resume`` continues the run in ``out_dir`` (a model that no longer fits its checkpoint is refused);
        ``overwrite`` removes the run already there first; without either a folder holding a run is refused.
        ``outputs_anywhere`` lets evaluators write to absolute paths outside the run folder.
        Under torchrun every rank calls it; rank 0 evaluates, saves and writes ``summary.json``.
        """
        self.outputs_anywhere = outputs_anywhere
        return run_pipeline(self, out_dir, resume=resume, overwrite=overwrite)

    def evaluate(self, split: str = "val") -> dict[str, dict[str, float]]:
        """Every evaluator's metrics on ``split``, by the evaluator's qualified id."""
        built = self._need_built()
        if built.evaluators and not self.has_split(split):
            names = ", ".join(s.spec.id for s in self.evaluator_slots)
            raise ConfigError([ConfigIssue("data", None, f"the evaluators ({names}) need a {split!r} split, which "
                                                         f"data `{self.slots['data'].spec.name}` does not have")])
        return {s.spec.id: dict(ev.evaluate(self, split)) for s, ev in zip(self.evaluator_slots, built.evaluators)}

    # -- saving and loading -------------------------------------------------------------------

    def write_config(self, out_dir: Path, config: Mapping[str, Any] | None = None,
                     lock: Mapping[str, Any] | None = None) -> None:
        """Write pipeline.toml and the lock into ``out_dir`` (atomically)."""
        _persist.write_config(out_dir, config if config is not None else self.to_config(),
                              lock if lock is not None else self.lock())

    def save(self, out_dir: str | Path) -> Path:
        """Config + lock + weights (safetensors) + the tokenizer's own files, into ``out_dir``.

        A tokenizer with ``save(folder)`` and a ``path`` option is saved under ``tokenizer/`` and the written
        config points its ``path`` there, so ``Pipeline.load`` needs nothing outside the folder.
        """
        out = Path(out_dir).resolve()
        built = self._need_built()
        out.mkdir(parents=True, exist_ok=True)
        config = self.to_config()
        in_use = self.files()
        files = {k: v for k, v in in_use.items() if not k.startswith("tokenizer:")}
        tok = built.components["tokenizer"]
        if hasattr(tok, "save") and "path" in {f.name for f in fields(self.slots["tokenizer"].config)}:
            tok_dir = out / "tokenizer"
            tok_dir.mkdir(exist_ok=True)
            target = Path(tok.save(tok_dir) or tok_dir)
            config["tokenizer"] = self._local_tokenizer(config["tokenizer"])
            config["tokenizer"]["path"] = str(target.relative_to(out))
            files.update(expand_files("tokenizer", [target]))
        else:
            files = in_use
        files["model:" + _persist.WEIGHTS_FILE] = _persist.save_weights(built.model, out)
        save_apart = getattr(built.model.objective, "save_apart", None)  # e.g. LoRA adapters, loadable on their own
        if callable(save_apart):
            files.update({f"model:{name}": path for name, path in save_apart(built.model.parts, out).items()})
        self.write_config(out, config, self.lock(files, root=out))
        return out

    def save_deployment(self, out_dir: str | Path) -> Path:
        """Save a run folder that needs nothing outside itself (``export RUN --to deploy``): as :meth:`save`, without
        the ``[weights]`` slot, whose source (a pretraining run, a pulled card) ``model.safetensors`` already holds
        in full; the data's normalisation and the tokenizer are pinned in it as in every saved run, and the lock
        lists only the files it holds."""
        import copy

        built = self._need_built()
        deployed = copy.copy(self)
        deployed.slots = {slot: s for slot, s in self.slots.items() if slot != "weights"}
        deployed._built = replace(built, components={k: v for k, v in built.components.items() if k != "weights"})
        return deployed.save(out_dir)

    def _local_tokenizer(self, table: dict[str, Any]) -> dict[str, Any]:
        """The tokenizer's table once its files are saved in the run: no hub source, and a card (``gpt2``) becomes
        its loader (``bpe``), so the run reads only its own copy."""
        table = {k: v for k, v in table.items() if k not in CARD_SOURCE}
        spec = self.slots["tokenizer"].spec
        if spec.card is not None:
            loaders = [s for s in self.registry.list(kind="tokenizer")
                       if s.card is None and s.target == spec.target and self.registry.status(s) == "active"]
            if loaders:
                table["use"] = loaders[0].id
        return table

    @classmethod
    def load(cls, out_dir: str | Path, registry: Registry | None = None, strict: bool = False) -> Pipeline:
        """Rebuild a saved pipeline: check the lock and file hashes, compose its config, load the weights.

        Weights load through safetensors only (nothing is unpickled).
        """
        out = Path(out_dir).resolve()
        pipeline = compose(_persist.read_saved_config(out, strict=strict), registry)
        pipeline._saved_weights = out
        pipeline.run_dir = out  # before build: the data's relative outputs (text-shards' shards) are in the folder
        pipeline.build(prepare=False)
        return pipeline
