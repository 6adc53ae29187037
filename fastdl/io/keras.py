"""Keras 3 files: `.keras` archives (config.json + model.weights.h5) and `.weights.h5`.

load_keras(path) translates Keras' config into fastdl's (the same layer names and
arguments, minus what only matters to Keras: dtype policies, constraints, seeds; the
regularizers fastdl has are kept for training, others dropped) and builds the model, then reads the weights where Keras' layout keeps them (each
layer's `_keras_weight_paths`). Everything is checked before the model is returned: an
unknown layer type, activation or unsupported option names the layer; a weights file that
does not fit names the layer and the model keeps its weights. h5py is needed (the
`fastdl[keras]` extra); Keras itself is not.
"""
import inspect
import io
import json

import numpy as np

from fastdl.models.saving import open_archive, read_member

# Config keys that do not change what a trained layer computes.
_INFERENCE_IRRELEVANT = {"dtype", "build_config", "compile_config", "seed", "module",
                         "registered_name", "shared_object_id"}
_SUFFIXES_IRRELEVANT = ("_constraint",)
# Keras options whose default is not falsy but that fastdl's layers need not be told.
_HARMLESS = {("BatchNormalization", "renorm_momentum"), ("BatchNormalization",
                                                          "renorm_clipping")}


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("reading Keras weights needs h5py: pip install fastdl[keras] "
                          "(or pip install h5py)") from None
    return h5py


# h5py's answers to damaged metadata or data (OverflowError: sizes beyond the file's).
_H5_DAMAGED = (OSError, KeyError, RuntimeError, TypeError, ValueError, OverflowError)
# What a config that parses as JSON but is not a Keras model's raises in translate or in
# the layers' from_config.
_BAD_CONFIG = (KeyError, IndexError, AttributeError, TypeError, ValueError)


def load_keras(path):
    """The fastdl model equivalent to the Keras 3 `.keras` file at `path`."""
    with open_archive(path, "a Keras .keras archive") as archive:
        names = set(archive.namelist())
        missing = {"config.json", "model.weights.h5"} - names
        if missing:
            raise ValueError(f"path: {path} lacks {', '.join(sorted(missing))} (not a Keras 3 "
                             f".keras archive)")
        try:
            config = json.loads(read_member(archive, "config.json", path))
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if str(exc).startswith("path:"):  # read_member's
                raise
            raise ValueError(f"path: {path} has a damaged config.json ({exc})") from None
        weights = read_member(archive, "model.weights.h5", path)
    try:
        model = model_from_keras_config(config, where=f"path: {path}")
    except _BAD_CONFIG as exc:
        message = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        if not message.startswith("path:"):
            message = f"path: {path} holds a Keras config fastdl cannot build ({message})"
        raise ValueError(message) from None
    try:
        h5 = _h5py().File(io.BytesIO(weights), "r")
    except _H5_DAMAGED as exc:
        raise ValueError(f"path: {path} has a damaged model.weights.h5 ({exc})") from None
    with h5:
        if not model.built:
            stored = _layer_weights(h5, f"{path}:model.weights.h5")
            if stored:  # they would be dropped: the model would predict with fresh weights
                raise ValueError(f"path: {path}: config.json gives the model no input shape "
                                 f"(no InputLayer or build_input_shape), so the weights in "
                                 f"model.weights.h5 ({stored[0]}, ...) have no place")
        _set_from_h5(model, h5, f"{path}:model.weights.h5")
    return model


def _layer_weights(h5, where):
    """The paths of the layers' weights in a Keras weights file (not the seed generators'
    states, which fastdl does not keep)."""
    found = []
    layers = h5.get("layers")
    if layers is not None and hasattr(layers, "visititems"):
        try:
            layers.visititems(lambda name, node: found.append(f"layers/{name}") if hasattr(
                node, "shape") and "seed_generator" not in name else None)
        except _H5_DAMAGED as exc:
            raise ValueError(f"path: {where} is damaged: listing its weights failed "
                             f"({type(exc).__name__}: {exc})") from None
    return found


def model_from_keras_config(entry, where="config"):
    """A fastdl layer or model from one Keras config entry ({class_name, config, ...})."""
    from fastdl import layers
    class_name, config = translate(entry, where)
    return layers.get(class_name).from_config(config)


def load_keras_weights(model, path):
    """Keras' `.weights.h5` at `path` into `model` (built with the same layers)."""
    try:
        h5 = _h5py().File(path, "r")
    except _H5_DAMAGED as exc:
        raise ValueError(f"path: {path} is not an HDF5 weights file: {exc}") from None
    with h5:
        _set_from_h5(model, h5, str(path))


def save_keras_weights(model, path):
    """The model's weights to `path` in Keras' `.weights.h5` layout."""
    with _h5py().File(path, "w") as h5:
        for w, where in zip(model.weights, model._keras_weight_paths()):
            h5.create_dataset(where, data=w.value)


def _set_from_h5(model, h5, where):
    arrays = []
    for w, path in zip(model.weights, model._keras_weight_paths()):
        try:
            node = h5.get(path)
            found = node is not None and hasattr(node, "shape")
            if found:
                arrays.append(np.asarray(node[()], dtype=np.float32))
        except _H5_DAMAGED as exc:
            raise ValueError(f"path: {where} is damaged: reading {path} failed "
                             f"({type(exc).__name__}: {exc})") from None
        if not found:
            raise ValueError(f"path: {where}: no weights for layer "
                             f"{w.name.rsplit('/', 1)[0]} (expected {path}); is it a model "
                             f"with the same layers?")
    try:
        model.set_weights(arrays)
    except ValueError as exc:  # shapes that do not fit: the model keeps its weights
        raise ValueError(f"path: {where}: {exc}") from None


# ---------------------------------------------------------------------------- configs

def translate(entry, where):
    """(fastdl class name, fastdl config) of a Keras config entry."""
    if not isinstance(entry, dict) or "class_name" not in entry:
        raise ValueError(f"{where}: expected a Keras layer config with a class_name, got "
                         f"{str(entry)[:80]}")
    class_name, config = entry["class_name"], entry.get("config") or {}
    name = config.get("name") if isinstance(config, dict) else None
    here = f"{where}: layer {name!r}" if name else where
    if class_name == "Sequential":
        return class_name, _sequential(config, here)
    if class_name in ("Functional", "Model"):
        return "Model", _functional(config, here)
    if class_name == "InputLayer":
        return class_name, _input_layer(config)
    from fastdl import layers
    try:
        cls = layers.get(class_name)
    except ValueError:
        raise ValueError(f"{here}: unknown layer type {class_name!r}; fastdl has no such "
                         f"layer") from None
    return class_name, _arguments(cls, class_name, config, here)


def _sequential(config, where):
    layers = [dict(zip(("class_name", "config"), translate(e, where)))
              for e in config.get("layers", [])]
    shape = config.get("build_input_shape")
    if shape and not (layers and layers[0]["class_name"] == "InputLayer"):
        layers.insert(0, {"class_name": "InputLayer",
                          "config": {"shape": list(shape[1:]), "batch_size": shape[0]}})
    return {"name": config.get("name"), "trainable": config.get("trainable", True),
            "layers": layers}


def _functional(config, where):
    layers = []
    for e in config["layers"]:
        class_name, layer_config = translate(e, where)
        name = e.get("name") or layer_config.get("name")
        calls = [_call(node, f"{where}: layer {name!r}") for node in e.get("inbound_nodes", [])]
        layers.append({"class_name": class_name, "name": name, "config": layer_config,
                       "inbound_nodes": calls})
    # Keras numbers a nested functional model's calls from 1 in these two lists (its node
    # 0 is its own construction) but from 0 in inbound_nodes; fastdl from 0 everywhere.
    functional = {e.get("name") or e["config"].get("name") for e in config["layers"]
                  if e["class_name"] in ("Functional", "Model")}

    def renumber(refs):
        if refs and isinstance(refs[0], list):
            return [renumber(r) for r in refs]
        name, node, tensor = refs
        return [name, node - 1 if name in functional else node, tensor]

    return {"name": config.get("name"), "trainable": config.get("trainable", True),
            "layers": layers, "input_layers": renumber(config["input_layers"]),
            "output_layers": renumber(config["output_layers"])}


def _call(node, where):
    """A Keras 3 inbound node ({args: [tensor or [tensors]], kwargs}) as fastdl's call:
    a ref [layer, node, tensor] or a list of refs."""
    if isinstance(node, list):  # Keras 2 layout: [[name, node, tensor, kwargs], ...]
        refs = [list(item[:3]) for item in node]
        return refs[0] if len(refs) == 1 else refs
    args, kwargs = node.get("args", []), node.get("kwargs", {})
    used = {k: v for k, v in kwargs.items() if v is not None and k not in ("training",
                                                                          "mask")}
    if used:
        raise ValueError(f"{where}: called with {', '.join(sorted(used))}, which fastdl's "
                         f"layers do not take")
    if len(args) != 1:
        raise ValueError(f"{where}: called with {len(args)} positional inputs; fastdl layers "
                         f"take one (a list for several tensors)")

    def ref(t):
        if not (isinstance(t, dict) and t.get("class_name") == "__keras_tensor__"):
            raise ValueError(f"{where}: an input that is not a tensor ({str(t)[:60]})")
        return list(t["config"]["keras_history"])

    arg = args[0]
    return [ref(t) for t in arg] if isinstance(arg, list) else ref(arg)


def _input_layer(config):
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    if shape is None:
        shape = [None] + list(config["shape"])
    return {"name": config.get("name"), "shape": list(shape[1:]), "batch_size": shape[0]}


def _parameters(cls):
    """The constructor arguments `cls` takes (its own and its bases' up to Layer)."""
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        names.update(p for p, spec in inspect.signature(init).parameters.items()
                     if spec.kind not in (spec.VAR_KEYWORD, spec.VAR_POSITIONAL))
    names.discard("self")
    return names


def _arguments(cls, class_name, config, where):
    accepted = _parameters(cls)
    out = {}
    for key, value in config.items():
        if key in _INFERENCE_IRRELEVANT or key.endswith(_SUFFIXES_IRRELEVANT):
            continue
        if key.endswith("_regularizer"):
            value = _regularizer(value)
            if value is not None and key in accepted:  # else: it only mattered to training
                out[key] = value
            continue
        if isinstance(value, dict) and "class_name" in value and key in ("layer",
                                                                          "backward_layer"):
            nested_class, nested = translate(value, where)
            value = {"class_name": nested_class, "config": nested}
        elif key.endswith("_initializer"):
            value = _initializer(value)
            if value is None:  # one fastdl lacks: the file's weights replace it anyway
                continue
        elif key.endswith("activation") or key == "function":
            value = _registered_name(value, key, where)
        if key in accepted:
            out[key] = value
        elif value in (None, False, 0, "", [], {}) or (class_name, key) in _HARMLESS:
            continue
        else:
            raise ValueError(f"{where} ({class_name}) uses {key}={value!r}, which fastdl "
                             f"does not support")
    return out


def _initializer(value):
    """A Keras initializer (a name or a config dict) as fastdl's, or None where fastdl lacks
    it."""
    from fastdl import initializers
    try:
        return initializers.check(value, "initializer")
    except (ValueError, TypeError):
        return None


def _regularizer(value):
    """A Keras regularizer config as fastdl's Regularizer, or None where fastdl lacks it."""
    from fastdl import regularizers
    try:
        return regularizers.get(value)
    except (ValueError, TypeError):
        return None


def _registered_name(value, key, where):
    """An activation (or Lambda function) as a name: Keras writes built-ins as strings and
    custom functions as {class_name: 'function', config: '[package>]name'}."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("class_name") == "__lambda__":
        raise ValueError(f"{where}: {key} is Python bytecode stored by Keras; fastdl does not "
                         f"run code from files -- register the function by name "
                         f"(fastdl.utils.get_custom_objects()) and save it by that name")
    if isinstance(value, dict) and isinstance(value.get("config"), str):
        from fastdl.utils import get_custom_objects
        from fastdl import activations
        name = value["config"]
        for candidate in (name, name.split(">")[-1]):
            if candidate in get_custom_objects() or candidate.lower() in activations.BUILTIN:
                return candidate
        raise ValueError(f"{where}: unknown {key} {name!r}: register the function under that "
                         f"name (fastdl.utils.get_custom_objects()[{name.split('>')[-1]!r}] "
                         f"= fn) before loading")
    raise ValueError(f"{where}: cannot read {key} {str(value)[:80]}")
