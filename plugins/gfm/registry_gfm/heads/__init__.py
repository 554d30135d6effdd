"""Finetuning heads over ViT features: ``classification`` (pooled) and ``segmentation`` (token grid to pixels)."""
