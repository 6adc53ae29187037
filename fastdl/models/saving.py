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
import tokenize
import zipfile
import zlib

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
    with open_archive(path, "a saved model (a fastdl or .keras archive)") as archive:
        names = set(archive.namelist())
        if "fastdl.json" not in names:
            if {"config.json", "model.weights.h5"} <= names:
                from fastdl.io.keras import load_keras
                return load_keras(path)
            raise ValueError(f"path: {path} holds neither a fastdl model (fastdl.json) nor "
                             f"a Keras one (config.json, model.weights.h5)")
        header = _read_header(archive, path)
        from fastdl import layers
        try:
            model = layers.get(header["class_name"]).from_config(header["config"])
        except (KeyError, IndexError, AttributeError, TypeError, ValueError) as exc:
            raise ValueError(f"path: {path} holds a model config fastdl cannot build "
                             f"({type(exc).__name__}: {exc})") from exc
        _set_weights(model, _read_npz(read_member(archive, "weights.npz", path), path), path)
    return model


# What reading a damaged archive member raises: a bad CRC or header, a broken deflate
# stream, a truncated member, an unknown compression method, a member missing from the
# directory, a member flagged as encrypted (zipfile's RuntimeError: no password given), a
# local header's name flagged UTF-8 that is not.
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError, KeyError,
            RuntimeError, UnicodeDecodeError)


# What opening a damaged zip archive raises: a bad record (BadZipFile), a version or
# method zipfile lacks (NotImplementedError), a name that is not UTF-8 (UnicodeDecodeError,
# a ValueError), a read past the end (EOFError), the OS's answer (OSError: no such file, a
# directory, ...).
_NOT_A_ZIP = (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError, OSError)


def open_archive(path, what):
    """The zip archive at `path` (ValueError naming the path, as not `what`, if it is
    none)."""
    try:
        return zipfile.ZipFile(path)
    except _NOT_A_ZIP as exc:
        raise ValueError(f"path: {path} is not {what}: {exc}") from None


def read_member(archive, name, path):
    """The bytes of `name` in the zip archive read from `path` (ValueError if damaged)."""
    try:
        return archive.read(name)
    except _DAMAGED as exc:
        raise ValueError(f"path: {path} is damaged: reading {name} failed "
                         f"({type(exc).__name__}: {exc})") from None


def _read_header(archive, path):
    """fastdl.json: a dict of our format and a version this fastdl reads."""
    try:
        header = json.loads(read_member(archive, "fastdl.json", path))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"path: {path} has a damaged fastdl.json ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"path: {path} has a damaged fastdl.json (not an object)")
    if header.get("format") != FORMAT or not isinstance(header.get("version", 0), int) \
            or header.get("version", 0) > VERSION:
        raise ValueError(f"path: {path} is a {header.get('format')} archive of version "
                         f"{header.get('version')}; this fastdl reads {FORMAT} up to "
                         f"version {VERSION}")
    return header


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
        _set_weights(model, _read_npz(f.read(), path), path)


def _set_weights(model, arrays, path):
    """model.set_weights(arrays) read from `path`: a mismatch names the file too (the model
    keeps its weights)."""
    try:
        model.set_weights(arrays)
    except (ValueError, TypeError) as exc:  # TypeError: arrays of strings, say
        raise ValueError(f"path: {path}: {exc}") from None


def _npz_bytes(arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **{f"w{i:05d}": a for i, a in enumerate(arrays)})
    return buffer.getvalue()


def _read_npz(data, path):
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return [npz[k] for k in sorted(npz.files)]
    # A damaged .npy header: numpy's header parser raises TokenError, and a shape damaged
    # past the machine's memory MemoryError (nothing has been read into the model yet).
    except (ValueError, tokenize.TokenError, MemoryError) + _DAMAGED as exc:
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
