"""Training the course models: fit with early stopping and best checkpoint, then the artefacts the
course asks for (curves, test accuracy, confusion matrix, misclassified samples). Needs ``[train]``."""

from edgecnn.train.fit import TrainConfig, TrainReport, train

__all__ = ["TrainConfig", "TrainReport", "train"]
