"""Evaluators of imagery pipelines: masked reconstruction, linear probe, task metrics and the baselines.

Its public names load on first use: importing the package (as ``plugin.py`` does for the light ``specs``) imports
nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry_gfm._lazy import lazy_names

if TYPE_CHECKING:
    from registry_gfm.evaluators.baselines import BaselinesEvaluator
    from registry_gfm.evaluators.linear_probe import LinearProbeEvaluator
    from registry_gfm.evaluators.reconstruction import ReconstructionEvaluator
    from registry_gfm.evaluators.task_metrics import TaskMetricsEvaluator

#: Public name -> the module that defines it.
_NAMES = {
    "BaselinesEvaluator": "registry_gfm.evaluators.baselines",
    "LinearProbeEvaluator": "registry_gfm.evaluators.linear_probe",
    "ReconstructionEvaluator": "registry_gfm.evaluators.reconstruction",
    "TaskMetricsEvaluator": "registry_gfm.evaluators.task_metrics",
}

__getattr__ = lazy_names(__name__, _NAMES)

__all__ = ["BaselinesEvaluator", "LinearProbeEvaluator", "ReconstructionEvaluator", "TaskMetricsEvaluator"]
