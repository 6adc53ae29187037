"""Keras 3 (torch backend) as the oracle of the layer tests: importing this module skips
the importing test module where keras is not installed. `pair` builds one architecture in
both libraries with Keras' weights; the summaries come back as printed text."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":  # a TensorFlow/JAX keras here: not the oracle set up
    pytest.skip("keras runs on another backend than torch", allow_module_level=True)

import fastdl  # noqa: E402
from fastdl import layers  # noqa: E402

RNG = np.random.default_rng(0)


def pair(build, shift_vectors=True):
    """The same Sequential in Keras and fastdl (build(module, Input) lists the layers),
    fresh names in both, Keras' random weights given to fastdl. With shift_vectors, 1-D
    weights (biases, BatchNormalization statistics: zeros or ones when fresh) are moved off
    their initial values first so they are exercised."""
    return pair_model(lambda ns: ns.Sequential(build(ns.layers, ns.Input)), shift_vectors)


def keras_summary(model):
    lines = []
    model.summary(print_fn=lambda text, **_: lines.append(text))
    return "\n".join(lines).rstrip("\n")


def fastdl_summary(model):
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def keras_predict(model, x):
    """Keras' outputs as float32 NumPy arrays (a list for several outputs)."""
    y = model.predict(x, verbose=0)
    return [np.asarray(a) for a in y] if isinstance(y, (list, tuple)) else np.asarray(y)


def namespace(library):
    """What a model builder needs from `library` ('keras' or 'fastdl'): layers, Input,
    Model, Sequential -- so one builder function makes the model in both."""
    import types
    if library == "keras":
        return types.SimpleNamespace(layers=keras.layers, Input=keras.Input,
                                     Model=keras.Model, Sequential=keras.Sequential)
    from fastdl import models
    return types.SimpleNamespace(layers=layers, Input=layers.Input, Model=models.Model,
                                 Sequential=models.Sequential)


def pair_model(build, shift_vectors=True):
    """As pair(), for build(ns) -> a model made from namespace(...) (functional, nested,
    any structure): both libraries' models, fastdl's holding Keras' weights."""
    keras.utils.clear_session()
    fastdl.utils.clear_session()
    k = build(namespace("keras"))
    f = build(namespace("fastdl"))
    weights = k.get_weights()
    if shift_vectors and any(w.ndim == 1 for w in weights):
        weights = [w + RNG.uniform(0.1, 0.5, w.shape).astype(np.float32) if w.ndim == 1
                   else w for w in weights]
        k.set_weights(weights)
    f.set_weights(weights)
    return k, f


def assert_close(got, want, rtol=1e-4):
    """Outputs (an array or a list of them) equal to rtol, the absolute tolerance scaled
    by the largest reference value."""
    got = got if isinstance(got, list) else [got]
    want = want if isinstance(want, list) else [want]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * max(np.abs(w).max(), 1e-3))
