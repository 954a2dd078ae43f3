"""Training that watches itself: ``fit`` (a pure fold over epochs), its
data forms, monitoring, detectors, recovery policies, checkpoints, and the
reports ``diagnose`` and ``inspect``.

The folder reads like the loop: ``data`` (what an epoch iterates),
``monitor`` (the step and its statistics), ``detectors`` (what goes wrong),
``recovery`` (what to do then), ``checkpoint`` (exact resume), ``fit`` (the
fold tying them together), ``diagnose`` and ``probe`` (reports), ``progress``.

>>> [n for n in ("fit", "diagnose", "inspect", "InstabilityError") if n not in fm.train.__all__]
[]
"""

from .data import batches
from .detectors import INSTABILITIES, KINDS, Thresholds
from .diagnose import Diagnosis, diagnose
from .fit import fit
from .probe import Inspection, inspect
from .progress import Progress, format_history, history_order, progress_bar
from .recovery import POLICIES, InstabilityError, InstabilityWarning

__all__ = ["fit", "diagnose", "Diagnosis", "inspect", "Inspection", "batches", "progress_bar",
           "format_history", "history_order",
           "Progress", "Thresholds", "InstabilityError", "InstabilityWarning", "INSTABILITIES",
           "KINDS", "POLICIES"]
