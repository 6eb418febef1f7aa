"""tscnn-tf: the three-stream CNN of Song et al. (IEEE Access 2019) for micro-expression recognition.

Importing the package is light (no TensorFlow): the offline feature stage runs in worker
processes that never need TensorFlow.
"""
import os

__version__ = "0.3.0"

# TensorFlow enables its oneDNN kernels by default only on Intel CPUs. On the AMD machines this
# project is developed on they train the full model 1.9x faster (8.5 -> 4.5 s per epoch of 540
# samples, measured side by side). Set before TensorFlow is imported; a user's own value wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def load_model(path):
    """The Keras model of a `.keras` file or of an export folder (`saved_models/<name>`), of
    any registry model: its layers (and a checkpoint's optimiser) are this package's classes."""
    from pathlib import Path

    import keras

    import tscnn_tf.models  # noqa: F401  (registers the models' layers)
    import tscnn_tf.optimizer  # noqa: F401  (and the optimiser of a fold's last.keras)
    path = Path(path)
    return keras.saving.load_model(path / "model.keras" if path.is_dir() else path)
