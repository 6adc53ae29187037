"""Saving models and weights.

model.save(path) writes one zip archive: `fastdl.json` (the model's class and config,
which names layers, activations and Lambda functions by their registered names -- no
code is pickled) and `weights.npz` (the weights in `model.weights` order; read back with
allow_pickle=False). load_model(path) reads it, or a Keras 3 `.keras` archive
(fastdl.io.load_keras).

Weights alone: `.npz` (fastdl's) or `.weights.h5` (Keras 3's layout, so Keras and fastdl
read each other's files; needs h5py). Loading checks every array before any is taken: a
file that does not match names the layer and the model keeps its weights.
"""
import io
import json
import zipfile

import numpy as np

FORMAT = "fastdl-model"
VERSION = 1


def save_model(model, path):
    """Writes `model` (config + weights) to the archive `path`."""
    from fastdl import __version__
    header = {"format": FORMAT, "version": VERSION, "fastdl_version": __version__,
              "class_name": model.class_name, "config": _jsonable(model.get_config()),
              "weights": [w.name for w in model.weights]}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("fastdl.json", json.dumps(header, indent=1))
        archive.writestr("weights.npz", _npz_bytes(model.get_weights()))


def load_model(path):
    """The model saved at `path` by model.save, or read from a Keras 3 `.keras` file."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, IsADirectoryError) as exc:
        raise ValueError(f"path: {path} is not a saved model (a fastdl or .keras "
                         f"archive): {exc}") from None
    with archive:
        names = set(archive.namelist())
        if "fastdl.json" not in names:
            if {"config.json", "model.weights.h5"} <= names:
                from fastdl.io.keras import load_keras
                return load_keras(path)
            raise ValueError(f"path: {path} holds neither a fastdl model (fastdl.json) nor "
                             f"a Keras one (config.json, model.weights.h5)")
        header = json.loads(archive.read("fastdl.json"))
        if header.get("format") != FORMAT or header.get("version", 0) > VERSION:
            raise ValueError(f"path: {path} is a {header.get('format')} archive of version "
                             f"{header.get('version')}; this fastdl reads {FORMAT} up to "
                             f"version {VERSION}")
        from fastdl import layers
        model = layers.get(header["class_name"]).from_config(header["config"])
        model.set_weights(_read_npz(archive.read("weights.npz"), path))
    return model


def save_weights(model, path):
    """The weights to `path`: Keras' layout for `*.weights.h5`, else NumPy's .npz."""
    path = str(path)
    if path.endswith(".h5"):
        from fastdl.io.keras import save_keras_weights
        save_keras_weights(model, path)
        return
    with open(path, "wb") as f:
        f.write(_npz_bytes(model.get_weights()))


def load_weights(model, path):
    """Weights from `path` (as save_weights writes them, or a Keras `.weights.h5`) into a
    model with the same layers; nothing is taken unless everything matches."""
    path = str(path)
    if path.endswith(".h5"):
        from fastdl.io.keras import load_keras_weights
        load_keras_weights(model, path)
        return
    with open(path, "rb") as f:
        model.set_weights(_read_npz(f.read(), path))


def _npz_bytes(arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **{f"w{i:05d}": a for i, a in enumerate(arrays)})
    return buffer.getvalue()


def _read_npz(data, path):
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return [npz[k] for k in sorted(npz.files)]
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"path: {path} does not hold fastdl weights: {exc}") from None


def _jsonable(value):
    """Configs as JSON: tuples as lists (from_config takes either)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
