"""Say the obvious: a model that scores what guessing would is not a model (``train`` and the README recipes)."""

from __future__ import annotations

import math

import numpy as np


def chance_level(y: np.ndarray, classes: int) -> float:
    """What guessing scores on ``y``: the larger of 1/classes and always answering the commonest class."""
    if not len(y):
        return 1.0 / max(1, classes)
    return max(1.0 / max(1, classes), float(np.bincount(y.astype(int), minlength=classes).max() / len(y)))


def chance_warning(accuracy: float, y: np.ndarray, classes: int) -> str | None:
    """A warning when ``accuracy`` is within two binomial standard errors of chance on ``len(y)`` samples."""
    chance = chance_level(y, classes)
    n = max(1, len(y))
    margin = 2.0 * math.sqrt(chance * (1.0 - chance) / n)
    if accuracy > chance + margin:
        return None
    return (
        f"test accuracy {accuracy:.1%} on {classes} classes: chance level (guessing scores {chance:.1%}; "
        f"{n} test samples): the model has not learnt — train longer (--epochs), on more data (--limit), "
        "or check the data and preprocessing"
    )
