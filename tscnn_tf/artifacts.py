"""What every written artifact shares: it is finished or absent (atomic writes), and it records
the package versions that made it. No TensorFlow import here."""
from __future__ import annotations

import importlib.metadata
import json
import os
import sys
from pathlib import Path

PACKAGES = ("tscnn-tf", "tensorflow", "keras", "numpy", "opencv-contrib-python-headless",
            "scikit-image", "dlib-bin", "face-recognition-models", "ai-edge-litert")


def package_versions() -> dict[str, str | None]:
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_json_atomic(path, data) -> None:
    """Write JSON under a temporary name, then rename: readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def save_model_atomic(model, path) -> None:
    """model.save() under a temporary name, then rename."""
    path = Path(path)
    tmp = path.with_name("partial-" + path.name)
    model.save(tmp)
    os.replace(tmp, path)
