"""Files of a model hub, pulled through ``huggingface_hub`` into its cache, hashed, usable offline.

``pull(repo, files)`` fetches (or finds in the cache) each file at a revision and returns where they are, the
commit they came from and their sha256; ``pull_card(spec)`` does it for a registry card. Nothing here imports
``huggingface_hub`` until a pull runs; the hub, cache, token and offline switch come from the environment on
each call (``HF_ENDPOINT``, ``HF_HOME`` / ``HF_HUB_CACHE``, ``HF_TOKEN``, ``HF_HUB_OFFLINE``), as the client's
own tools read them. Every failure is a :class:`HubError` naming the repo, file and what to do.
"""

from __future__ import annotations

from registry_core.hub._pull import (
    HubError,
    Pulled,
    PulledFile,
    cache_dir,
    cached,
    endpoint,
    find_cards,
    is_offline,
    pull,
    pull_card,
    pull_matching,
    resolve_files,
)

__all__ = ["HubError", "Pulled", "PulledFile", "cache_dir", "cached", "endpoint", "find_cards", "is_offline", "pull",
           "pull_card", "pull_matching", "resolve_files"]
