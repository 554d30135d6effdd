"""``text-shards``: local text (or the embedded pydoc corpus) made into verified token shards.

Use::

    src = registry.build("data_source", "text-shards", out="shards", dedup="minhash")
    src.attach_tokenizer(tok)          # tok: a trained `bpe` (train it on src.train_tokenizer_texts())
    src.prepare()                      # idempotent: rebuilds only when inputs, config or tokenizer changed
    train = src.dataset("train")       # item i -> {"input_ids": (seq_len,), "targets": (seq_len,)}

``prepare`` streams documents through clean -> Gopher filter -> dedup -> tokenize -> shard files, and
replaces ``manifest.json`` atomically only after every shard is written and fsynced.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import itertools
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from registry_core import ConfigError, ConfigIssue, RegistryCoreError
from registry_core.atomic import move_into_place, path_inside, remove_written, write_json
from registry_llm.data.content_filters import ContentFilters, file_sha256, make_filters
from registry_llm.data.dedup import DedupIndex
from registry_llm.data.document_batches import BatchSettings, run_batches
from registry_llm.data.embedded_corpus import embedded_documents, embedded_fingerprint
from registry_llm.data.gopher_filters import QualityRules
from registry_llm.data.shard_files import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    ShardError,
    ShardWriter,
    dtype_for_vocab,
    read_manifest,
    remove_stale_builds,
    verify_shards,
)
from registry_llm.data.specs import RULE_THRESHOLDS, TextShardsConfig
from registry_llm.data.text_files import expand_paths, file_fingerprint, read_documents
from registry_llm.data.token_windows import TokenLoader, TokenStream, TokenWindows

__all__ = ["EmptyCorpusError", "TextShards", "TokenizerMismatchError", "build_text_shards"]

_RULE_FIELDS = tuple(f.name for f in dataclasses.fields(QualityRules))


class EmptyCorpusError(RegistryCoreError, ValueError):
    """No input files, no document survived cleaning, filtering and dedup, or a split is too small for a window."""


class TokenizerMismatchError(RegistryCoreError, ValueError):
    """Shards were built with another tokenizer than the one attached."""


class TextShards:
    """The ``text-shards`` data source (see the module docstring for the flow)."""

    #: What was pulled from a hub (None for local files), for the lock.
    pulled: Any = None

    def __init__(self, config: TextShardsConfig) -> None:
        self.config = config
        self.out = Path(config.out).expanduser()
        self.tokenizer: Any = None
        #: Counts of the last ``prepare`` (or of the build found up to date).
        self.stats: dict[str, Any] = {}
        self._verified: set[str] = set()  # builds whose shard checksums were read by this instance
        try:  # an unknown language or an unreadable blocklist is a config error before anything is read
            filters = make_filters(config.languages, config.min_language_score, config.blocklist_words,
                                   config.blocklist_urls)
        except ValueError as exc:
            raise ConfigError(f"text-shards {exc}", slot="data") from None
        self._content_filters = filters if filters.active else None

    # -- inputs --------------------------------------------------------------------------------

    def attach_run_dir(self, run_dir: Path) -> TextShards:
        """Put a relative ``out`` inside the run folder, so a run's shards stay with the run (``run --out``); one
        that would leave it (``..``) is an OutputPathError naming the option."""
        self.out = path_inside(run_dir, self.out, "text-shards option 'out'")
        return self

    def attach_tokenizer(self, tokenizer: Any) -> TextShards:
        """Give the source its tokenizer (a trained ``bpe``); the pipeline does this before ``prepare``."""
        self.tokenizer = tokenizer
        return self

    def _files(self) -> list[Path] | None:
        if self.config.hub is not None:
            return self._hub_files()
        if not self.config.paths:
            return None
        files = expand_paths(self.config.paths)
        if not files:
            raise EmptyCorpusError(
                f"text-shards: no input files match paths={self.config.paths!r} (expected .txt, .jsonl or .parquet)"
            )
        return files

    def _hub_files(self) -> list[Path]:
        """The hub dataset's shards the byte budget covers, pulled (once) into huggingface_hub's cache."""
        if self.pulled is None:
            from registry_core.hub import pull_matching

            c = self.config
            assert c.hub is not None and c.files
            self.pulled = pull_matching(c.hub, c.files, revision=c.revision, repo_type=c.repo_type,
                                        max_bytes=c.max_bytes)
        return [f.path for f in self.pulled.files]

    def _documents(self, files: list[Path] | None, on_problem: Any) -> Iterator[tuple[str, str]]:
        if files is None:
            docs = embedded_documents()
        else:
            docs = read_documents(
                files,
                text_field=self.config.text_field,
                txt_documents=self.config.txt_documents,
                errors=self.config.errors,
                on_problem=on_problem,
            )
        limit = self.config.max_documents
        return docs if limit is None else itertools.islice(docs, limit)

    def _rules(self) -> QualityRules | None:
        if not self.config.quality_filter:
            return None
        off = {field for rule in self.config.disable_rules for field in RULE_THRESHOLDS[rule]}
        return QualityRules(**{name: None if name in off else getattr(self.config, name) for name in _RULE_FIELDS})

    def _settings(self, tokenizer: Any, dtype: str) -> BatchSettings:
        c = self.config
        return BatchSettings(
            rules=self._rules(),
            dedup=c.dedup,
            ngram=c.minhash_ngram,
            num_perm=c.minhash_bands * c.minhash_rows,
            seed=c.minhash_seed,
            tokenizer=tokenizer,
            dtype=dtype,
            append_eos=c.append_eos,
            filters=self._filters(),
        )

    def _filters(self) -> ContentFilters | None:
        """The language and blocklist filters (None: none set)."""
        return self._content_filters

    def _dedup_index(self) -> DedupIndex:
        c = self.config
        return DedupIndex(c.dedup, bands=c.minhash_bands, rows=c.minhash_rows, seed=c.minhash_seed)

    def train_tokenizer_texts(self) -> Iterator[str]:
        """Cleaned documents that pass the quality rules and dedup: what to train ``bpe`` on."""
        files = self._files()
        index = self._dedup_index()
        settings = self._settings(None, "uint32")
        docs = self._documents(files, lambda origin, reason: None)
        for batch in run_batches(docs, settings, batch_size=self.config.batch_documents, workers=self.config.workers):
            for res in batch:
                if res.reason is None and res.text is not None and not index.seen(res.signature):
                    yield res.text

    # -- building ------------------------------------------------------------------------------

    def _cleaning_config(self) -> dict[str, Any]:
        c = dataclasses.asdict(self.config)
        keep = ("text_field", "max_documents", "txt_documents", "errors", "dedup", "minhash_ngram", "minhash_bands",
                "minhash_rows",
                "minhash_seed", "quality_filter", "disable_rules", "append_eos", "shard_tokens", "languages",
                "min_language_score", *_RULE_FIELDS)
        out = {k: c[k] for k in keep}
        for key in ("blocklist_words", "blocklist_urls"):  # a list's content, not its path, decides the shards
            out[key] = file_sha256(c[key]) if c[key] and Path(c[key]).expanduser().is_file() else c[key]
        return out

    def _require_tokenizer(self) -> Any:
        tok = self.tokenizer
        if tok is None:
            raise RuntimeError(
                "text-shards needs a tokenizer: call attach_tokenizer(tok) with a trained bpe before prepare()"
            )
        if not getattr(tok, "trained", True):
            raise RuntimeError(
                "text-shards: the attached tokenizer is not trained; train it on train_tokenizer_texts() first"
            )
        return tok

    def _tokenizer_record(self, tok: Any) -> dict[str, Any]:
        return {"sha256": tok.sha256, "vocab_size": tok.vocab_size, "eos_id": tok.eos_id}

    def prepare(self) -> None:
        """Build the shards unless ``manifest.json`` already describes these inputs, settings and tokenizer."""
        tok = self._require_tokenizer()
        files = self._files()
        inputs = [embedded_fingerprint()] if files is None else [file_fingerprint(p) for p in files]
        cleaning = self._cleaning_config()
        tok_rec = self._tokenizer_record(tok)
        fingerprint = hashlib.sha256(
            json.dumps({"v": FORMAT_VERSION, "inputs": inputs, "cleaning": cleaning, "tokenizer": tok_rec},
                       sort_keys=True, default=str).encode()
        ).hexdigest()
        if self._up_to_date(fingerprint):
            return
        self.out.mkdir(parents=True, exist_ok=True)
        self._build(files, inputs, cleaning, tok, tok_rec, fingerprint)

    def _up_to_date(self, fingerprint: str) -> bool:
        """Whether ``out`` holds this build intact: sizes, and sha256 when ``verify_checksums`` (so a corrupt
        shard is rebuilt here, and ``dataset`` need not read the shards a second time)."""
        checksums = self.config.verify_checksums
        try:
            manifest = read_manifest(self.out)
            if manifest.get("fingerprint") != fingerprint:
                return False
            verify_shards(self.out, manifest, checksums=checksums)
        except (FileNotFoundError, ShardError):
            return False
        if checksums:
            self._verified.add(manifest["build"])
        self.stats = dict(manifest.get("stats", {}), up_to_date=True)
        return True

    def _build(
        self,
        files: list[Path] | None,
        inputs: list[dict[str, Any]],
        cleaning: dict[str, Any],
        tok: Any,
        tok_rec: dict[str, Any],
        fingerprint: str,
    ) -> None:
        c = self.config
        start = time.perf_counter()
        dtype = dtype_for_vocab(tok.vocab_size)
        counts: Counter[str] = Counter()
        rejects: IO[str] | None = None
        rejects_tmp: Path | None = None
        if c.rejects is not None:
            rejects_path = Path(c.rejects).expanduser()
            rejects_path.parent.mkdir(parents=True, exist_ok=True)
            rejects_tmp = rejects_path.with_name(f".{rejects_path.name}.{os.getpid()}.tmp")
            rejects = open(rejects_tmp, "w", encoding="utf-8")  # noqa: SIM115 (closed below on success and failure)

        documents: IO[str] | None = None
        documents_tmp: Path | None = None
        if c.documents is not None:
            documents_path = Path(c.documents).expanduser()
            documents_path.parent.mkdir(parents=True, exist_ok=True)
            documents_tmp = documents_path.with_name(f".{documents_path.name}.{os.getpid()}.tmp")
            documents = open(documents_tmp, "w", encoding="utf-8")  # noqa: SIM115 (closed below on success and failure)
        languages: Counter[str] = Counter()

        def reject(origin: str, reason: str, text: str | None = None, lang: dict[str, Any] | None = None) -> None:
            counts[f"rejected.{reason}"] += 1
            if rejects is not None:
                rejects.write(json.dumps({"origin": origin, "reason": reason, **(lang or {}), "text": text},
                                         ensure_ascii=False) + "\n")

        def record(res: Any, outcome: str) -> None:
            if res.language is not None and outcome == "kept":
                languages[res.language] += 1
            if documents is not None:
                documents.write(json.dumps({"origin": res.origin, "outcome": outcome, "language": res.language,
                                            "language_score": res.language_score}, ensure_ascii=False) + "\n")

        build = f"build-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        writer = ShardWriter(self.out, build, dtype, c.shard_tokens)
        index = self._dedup_index()
        try:
            docs = self._documents(files, lambda origin, reason: reject(origin, reason))
            for batch in run_batches(docs, self._settings(tok, dtype.name), batch_size=c.batch_documents,
                                     workers=c.workers, keep_text=rejects is not None):
                for res in batch:
                    counts["documents_read"] += 1
                    counts["bytes_read"] += res.raw_bytes
                    lang = {"language": res.language, "language_score": res.language_score} \
                        if res.language_score is not None else None
                    if res.reason is not None:
                        reject(res.origin, res.reason, res.text, lang)
                        record(res, res.reason)
                    elif index.seen(res.signature):
                        dup = "exact_duplicate" if c.dedup == "exact" else "near_duplicate"
                        reject(res.origin, dup, res.text, lang)
                        record(res, dup)
                    else:
                        assert res.ids is not None
                        writer.add(res.ids)
                        counts["documents_kept"] += 1
                        counts["tokens"] += len(res.ids)
                        record(res, "kept")
            shards = writer.finish()
            if not shards:
                raise EmptyCorpusError(
                    f"text-shards: no document left to write into {self.out} "
                    f"(counts: {dict(counts) or 'no documents read'}); check paths, text_field and the filter settings"
                )
            if rejects is not None and rejects_tmp is not None and c.rejects is not None:
                rejects.close()
                move_into_place(rejects_tmp, Path(c.rejects).expanduser())
                rejects = None
            if documents is not None and documents_tmp is not None and c.documents is not None:
                documents.close()
                move_into_place(documents_tmp, Path(c.documents).expanduser())
                documents = None
        except BaseException:
            writer.abort()
            for handle, tmp in ((rejects, rejects_tmp), (documents, documents_tmp)):
                if handle is not None and tmp is not None:
                    handle.close()
                    remove_written(tmp)
            raise
        stats: dict[str, Any] = {k: counts[k] for k in sorted(counts)}
        if languages:
            stats["languages"] = dict(languages.most_common())  # of the documents kept
        stats["seconds"] = round(time.perf_counter() - start, 3)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "fingerprint": fingerprint,
            "build": build,
            "tokenizer": tok_rec,
            "dtype": dtype.name,
            "n_tokens": sum(s.n_tokens for s in shards),
            "n_documents": sum(s.n_documents for s in shards),
            "shards": [s.as_dict() for s in shards],
            "cleaning": cleaning,
            "inputs": inputs,
            "stats": stats,
        }
        write_json(self.out / MANIFEST, manifest, indent=1)
        remove_stale_builds(self.out, keep=build)
        self.stats = stats

    # -- reading -------------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """The current ``manifest.json`` of ``out``."""
        return read_manifest(self.out)

    def fingerprint(self) -> dict[str, Any]:
        """What this source trains on, for the run's lock: a hash of its shards' sha256s (the tokens themselves,
        whatever the build's id); ``source`` names the shard folder (a resumed run must train on the same)."""
        shards = self.manifest()["shards"]
        digest = hashlib.sha256("".join(f"{s['sha256']}{s['idx_sha256']}" for s in shards).encode()).hexdigest()
        return {"source": f"text shards {self.out}", "shards": digest}

    def _check_tokenizer(self, manifest: dict[str, Any]) -> None:
        if self.tokenizer is None or not getattr(self.tokenizer, "trained", True):
            return
        built = manifest["tokenizer"]
        sha = self.tokenizer.sha256
        if built["sha256"] != sha:
            raise TokenizerMismatchError(
                f"the shards in {self.out} were built with tokenizer sha256 {built['sha256'][:12]}… "
                f"(vocab {built['vocab_size']}), but the attached tokenizer is {sha[:12]}… "
                f"(vocab {self.tokenizer.vocab_size}); attach the tokenizer they were built with, or run prepare() "
                "to rebuild them"
            )

    def _split_range(self, manifest: dict[str, Any], stream: TokenStream, split: str) -> tuple[int, int]:
        """[begin, end) tokens of ``split``: val starts at the document boundary nearest (1 - val_fraction)."""
        import numpy as np

        n = stream.n_tokens
        cut = n
        if self.config.val_fraction > 0:
            target = n * (1.0 - self.config.val_fraction)
            # Shard ends are document boundaries, so the nearest boundary lies in the shard holding target.
            k = min(bisect.bisect_right(stream.starts, target) - 1, len(manifest["shards"]) - 1)
            offsets = np.fromfile(self.out / manifest["shards"][k]["idx"], dtype="<u8").astype(np.int64)
            inside = offsets + stream.starts[k]
            inside = inside[(inside > 0) & (inside < n)]  # both splits must keep at least one document
            if len(inside):
                cut = int(inside[np.argmin(np.abs(inside - target))])
        if split == "train":
            return 0, cut
        if split == "val":
            return cut, n
        raise ValueError(f"text-shards has splits 'train' and 'val', not {split!r}")

    def has_split(self, split: str) -> bool:
        """Whether ``split`` exists: ``"train"`` always, ``"val"`` unless ``val_fraction`` is 0."""
        return split == "train" or (split == "val" and self.config.val_fraction > 0)

    def dataset(self, split: str = "train") -> TokenWindows:
        """Windows of ``seq_len + 1`` tokens of one split (shards verified; tokenizer checked if attached)."""
        if split == "val" and not self.has_split(split):
            raise ConfigError([ConfigIssue("data", "val_fraction", f"text-shards in {self.out} has no 'val' split: "
                                                                   "val_fraction is 0; set val_fraction > 0 for one")])
        manifest = read_manifest(self.out)
        # Checksums are read once per build and instance (train and val open the same shards).
        checksums = self.config.verify_checksums and manifest["build"] not in self._verified
        shards = verify_shards(self.out, manifest, checksums=checksums)
        if checksums:
            self._verified.add(manifest["build"])
        self._check_tokenizer(manifest)
        stream = TokenStream(self.out, shards, manifest["dtype"])
        begin, end = self._split_range(manifest, stream, split)
        windows = TokenWindows(stream, begin, end, self.config.seq_len, split)
        if len(windows) == 0:
            raise EmptyCorpusError(
                f"the {split!r} split of {self.out} has {end - begin} tokens, too few for one window of "
                f"seq_len + 1 = {self.config.seq_len + 1}; lower seq_len, change val_fraction or add text"
            )
        return windows

    def token_loader(self, batch_size: int, split: str = "train", seed: int = 0) -> TokenLoader:
        """Random-window ``get_batch()`` over one split (for quick loops and benchmarks)."""
        return TokenLoader(self.dataset(split), batch_size, seed)


def build_text_shards(config: TextShardsConfig) -> TextShards:
    """Registry factory for ``data_source/text-shards``."""
    return TextShards(config)
