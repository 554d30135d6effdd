"""registry-llm's rows of ``python -m registry_core report``.

- ``model``: the language model's own figures (1-D positions, last-layer attention on a prompt);
- ``tasks``: finetuned runs (a classifier's few-label curve and confusion matrix, an instruction-tuned model's
  answers before and after tuning) and their key figures.
"""

from __future__ import annotations

from registry_llm.report.model import PROMPT, is_text_run, key_figures, run_figures
from registry_llm.report.tasks import is_task_run, task_figures, task_key_figures, task_tables

__all__ = ["PROMPT", "is_task_run", "is_text_run", "key_figures", "run_figures", "task_figures", "task_key_figures",
           "task_tables"]
