"""Cards of named text corpora on the Hugging Face Hub: ``text-shards`` preset to a dataset repo's parquet shards
(picked by pattern: the hub's parquet names carry content hashes), with a byte budget so a first run pulls one
shard, not the corpus (no heavy imports, no network)."""

from __future__ import annotations

from registry_core import Card, ComponentSpec
from registry_llm.data.specs import TextShardsConfig


def _card(name: str, repo: str, files: tuple[str, ...], summary: str, licence: str, about: dict[str, object],
          max_bytes: int) -> ComponentSpec:
    return ComponentSpec(
        kind="data_source",
        name=name,
        target="registry_llm.data.text_shards:build_text_shards",
        summary=summary,
        modality="text",
        tags=("llm", "text", "shards", "huggingface"),
        config=TextShardsConfig,
        provides={"tokens": "discrete", "seq_len": None},
        card=Card(repo=repo, files=files, repo_type="dataset", licence=licence,
                  source=f"https://huggingface.co/datasets/{repo}",
                  preprocessing={"text_field": "text", **about},
                  options={"text_field": "text", "max_bytes": max_bytes}),
    )


SPECS: list[ComponentSpec] = [
    _card("tinystories", "roneneldan/TinyStories", ("data/train-*.parquet",),
          "TinyStories: short stories in a 3-year-old's vocabulary, written by GPT-3.5/4 (Eldan & Li, 2023).",
          "cdla-sharing-1.0", {"documents": "about 2.1 million stories (train)", "citation": "arXiv:2305.07759"},
          max_bytes=512_000_000),
    _card("fineweb-edu-10bt", "HuggingFaceFW/fineweb-edu", ("sample/10BT/*.parquet",),
          "FineWeb-Edu, the 10-billion-token sample: educational web pages filtered from FineWeb (Penedo et al., "
          "2024); by default the first shard only.",
          "odc-by", {"tokens": "10 billion (GPT-2 tokenizer), in ~2 GB shards", "citation": "arXiv:2406.17557"},
          max_bytes=2_500_000_000),
    _card("wikitext-103", "Salesforce/wikitext", ("wikitext-103-raw-v1/train-*.parquet",),
          "WikiText-103 (raw): Wikipedia's Good and Featured articles, one row per line (Merity et al., 2016).",
          "cc-by-sa-3.0", {"tokens": "about 103 million", "rows": "one per line of the articles (many empty)",
                           "citation": "arXiv:1609.07843"},
          max_bytes=400_000_000),
]
