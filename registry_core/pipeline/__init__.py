"""Pipelines: composition (config -> wired, checked slots), the built pipeline, its saved form and lock, the
train config, run folders and resume checks. Torch is imported only when a pipeline is built or trained.

The public names are ``registry_core.compose``, ``Pipeline``, ``TrainConfig``, ``LockMismatch`` and ``SLOTS``;
this ``__init__`` imports nothing, so browsing (``list``, ``show``) that needs one module loads only that one.
"""
