"""Regenerate documents.jsonl: real human translations of Django's messages, grouped into short documents per language.

Source: the Django wheel on the package index (``pip download django==5.2.19 --no-deps``), its
``django/conf/locale/*/LC_MESSAGES/django.po`` and ``django/contrib/admin/locale/*/LC_MESSAGES/django.po``.
English documents are the message ids themselves. Run:

    python tests/data/translations/make_translations.py path/to/Django-5.2.19-py3-none-any.whl
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path

LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pl", "pt")
PER_DOCUMENT = 6
DOCUMENTS = 8
MIN_CHARS = 30
OUT = Path(__file__).with_name("documents.jsonl")


def _unquote(line: str) -> str:
    return json.loads(line) if line.startswith('"') else ""


def messages(po: str) -> list[tuple[str, str]]:
    """(msgid, msgstr) pairs of a .po file, continuation lines joined; plural forms and the header skipped."""
    pairs, key, parts, current = [], None, {"msgid": "", "msgstr": ""}, None
    for raw in [*po.splitlines(), ""]:
        line = raw.strip()
        match = re.match(r'^(msgid|msgstr) (".*")$', line)
        if match:
            if match.group(1) == "msgid" and key == "msgstr":
                pairs.append((parts["msgid"], parts["msgstr"]))
                parts = {"msgid": "", "msgstr": ""}
            key = current = match.group(1)
            parts[current] = _unquote(match.group(2))
        elif line.startswith('"') and current:
            parts[current] += _unquote(line)
        elif not line or line.startswith(("#", "msgid_plural", "msgstr[", "msgctxt")):
            current = None if not line.startswith('"') else current
    if key == "msgstr":
        pairs.append((parts["msgid"], parts["msgstr"]))
    return [(i, s) for i, s in pairs if i and s]


def usable(text: str) -> bool:
    return len(text) >= MIN_CHARS and not re.search(r"%\(|%s|%d|\{|<|\\n", text)


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = sorted(n for n in zf.namelist() if re.match(r"django/(conf|contrib/admin)/locale/[a-z]+/LC_MESSAGES/"
                                                             r"django\.po$", n))
        texts: dict[str, list[str]] = {lang: [] for lang in LANGUAGES}
        for name in names:
            lang = name.split("/locale/")[1].split("/")[0]
            for msgid, msgstr in messages(zf.read(name).decode("utf-8")):
                if lang == "de" and usable(msgid) and msgid not in texts["en"]:
                    texts["en"].append(msgid)  # the English originals, once
                if lang in texts and lang != "en" and usable(msgstr):
                    texts[lang].append(msgstr)
    with OUT.open("w", encoding="utf-8") as fh:
        for lang in LANGUAGES:
            found = texts[lang]
            for k in range(DOCUMENTS):
                chunk = found[k * PER_DOCUMENT:(k + 1) * PER_DOCUMENT]
                if len(chunk) == PER_DOCUMENT:
                    fh.write(json.dumps({"text": " ".join(chunk), "language": lang}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
