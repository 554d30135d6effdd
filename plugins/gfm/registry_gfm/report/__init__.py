"""registry-gfm's figures for ``python -m registry_core report``, called from ``plugin.py``'s report hooks.

- ``key_figures``: the summary table's reconstruction error and the three mIoUs (no heavy imports);
- ``evaluation``: the evaluators' own PNGs (reconstruction grid, confusion matrix) and the per-class IoU of
  the finetuned encoder next to its baselines;
- ``model``: a pretrained run's 2-D positional table and its ViT's bidirectional attention on a real chip;
- ``landcover``: a predicted class map next to the label raster and the RGB scene, in one colour per class.
"""
