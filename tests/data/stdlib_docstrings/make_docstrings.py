"""Regenerate docstrings.jsonl: docstrings of Python's standard library, labelled by the module family they document.

The corpus is a real labelled text-classification set with plain provenance: every text is a docstring of the
interpreter that runs this script, so the file is reproducible from CPython alone (another CPython version gives a
slightly different file). Run from the repository root:

    .venv/bin/python tests/data/stdlib_docstrings/make_docstrings.py
"""

from __future__ import annotations

import importlib
import inspect
import json
import platform
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

# Label -> modules of that family; the label order is the order of the file. The modules after the first line of a
# family were added to bring it towards 150 examples; datetime stays short (the standard library has no more).
FAMILIES: dict[str, tuple[str, ...]] = {
    "text": (
        "string", "re", "textwrap", "difflib", "unicodedata", "stringprep", "codecs",
        "locale", "gettext", "shlex", "readline", "rlcompleter", "html", "encodings", "encodings.punycode",
        "encodings.utf_8_sig", "encodings.utf_16", "tokenize", "pprint", "reprlib", "curses.textpad",
    ),
    "numbers": (
        "math", "cmath", "decimal", "fractions", "statistics", "random", "numbers",
        "secrets", "array", "colorsys",
    ),
    "files": (
        "os.path", "pathlib", "shutil", "glob", "fnmatch", "tempfile", "filecmp", "stat", "fileinput",
        "io", "linecache",
    ),
    "network": (
        "socket", "ssl", "http.client", "http.server", "urllib.request", "urllib.parse", "smtplib", "ftplib",
        "ipaddress", "email.message", "email.utils",
    ),
    "concurrency": (
        "threading", "multiprocessing", "concurrent.futures", "asyncio", "queue", "sched", "subprocess", "selectors",
    ),
    "data_formats": (
        "json", "csv", "pickle", "configparser", "tomllib", "plistlib", "xml.etree.ElementTree", "base64", "binascii",
        "struct", "marshal", "shelve", "xml.dom.minidom", "xml.sax", "quopri",
    ),
    "datetime": (
        "datetime", "time", "calendar", "zoneinfo",
        "_strptime",
    ),
    "introspection": ("inspect", "dis", "ast", "types", "typing", "traceback", "functools", "operator", "abc"),
}
MIN_WORDS = 12
MAX_CHARS = 1000
CAP = 400
SEED = 0
OUT = Path(__file__).with_name("docstrings.jsonl")


def defined_in(obj: object, module: ModuleType) -> bool:
    """Whether obj is the module's own: defined in it, in its C accelerator (``_pickle`` for ``pickle``), or, for a
    package re-exporting, in one of its submodules. Keeps objects merely imported from elsewhere out."""
    owner = getattr(obj, "__module__", None)
    if not isinstance(owner, str):
        return False
    name = module.__name__  # os.path is really posixpath (or ntpath)
    if owner in (name, "_" + name.rsplit(".", 1)[-1].lower()):
        return True
    return hasattr(module, "__path__") and owner.startswith(name + ".")


def public_members(module: ModuleType) -> Iterator[tuple[str, object]]:
    """(qualified name, object) of the module's public functions and classes, and of each such class's public
    methods (one level, those in the class's own namespace), in sorted name order."""
    for name in sorted(dir(module)):
        if name.startswith("_"):
            continue
        obj = getattr(module, name, None)
        if not (inspect.isclass(obj) or inspect.isroutine(obj)) or not defined_in(obj, module):
            continue
        yield name, obj
        if inspect.isclass(obj):
            for attr, raw in sorted(vars(obj).items()):
                if attr.startswith("_"):
                    continue
                method = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
                if inspect.isroutine(method):
                    yield f"{name}.{attr}", method


def clean(doc: str | None) -> str | None:
    """The docstring as one line of at most MAX_CHARS characters, or None when it has under MIN_WORDS words."""
    if not doc:
        return None
    text = re.sub(r"\s+", " ", doc).strip()
    return text[:MAX_CHARS] if len(text.split()) >= MIN_WORDS else None


def collect() -> dict[str, list[dict[str, str]]]:
    """Every usable docstring per label, identical texts kept once (the first, in family, module, name order)."""
    seen: set[str] = set()
    rows: dict[str, list[dict[str, str]]] = {label: [] for label in FAMILIES}
    for label, modules in FAMILIES.items():
        for module_name in modules:
            try:
                module = importlib.import_module(module_name)
            except ImportError as error:
                print(f"skipped {module_name}: {error}", file=sys.stderr)
                continue
            for qualname, obj in [(module_name, module), *((f"{module_name}.{n}", o) for n, o in public_members(module))]:
                text = clean(inspect.getdoc(obj))
                if text is None or text in seen:
                    continue
                seen.add(text)
                rows[label].append({"text": text, "label": label, "module": module_name, "object": qualname})
    return rows


def balance(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """At most CAP rows: a seeded shuffle of the sorted rows, its first CAP, sorted again by (module, object)."""
    ordered = sorted(rows, key=lambda row: (row["module"], row["object"]))
    random.Random(SEED).shuffle(ordered)
    return sorted(ordered[:CAP], key=lambda row: (row["module"], row["object"]))


def main() -> None:
    """Write OUT and print the count per label (before and after the cap) and the Python version."""
    collected = collect()
    kept = {label: balance(rows) for label, rows in collected.items()}
    with OUT.open("w", encoding="utf-8", newline="\n") as fh:
        for label in FAMILIES:
            for row in kept[label]:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    for label in FAMILIES:
        print(f"{label}: {len(kept[label])} (of {len(collected[label])})")
    print(f"total: {sum(map(len, kept.values()))}")
    print(f"Python {platform.python_version()} ({platform.python_implementation()})")


if __name__ == "__main__":
    main()
