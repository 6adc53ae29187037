"""Utilities as Keras names them: clear_session, get_custom_objects, set_random_seed."""
import random

import numpy as np

from fastdl import _random, _validate as v, activations, initializers


def clear_session():
    """Forgets the automatic layer and model names given so far ('dense', 'dense_1', ...
    start again), as keras.utils.clear_session()."""
    from fastdl.layers import base
    base.reset_names()


def get_custom_objects():
    """The registry of custom activations by name (add to it to register one)."""
    return activations.custom_objects()


def set_random_seed(seed):
    """Seeds the weight initializers, training's draws (dropout masks, shuffling), Python's
    and NumPy's global generators: the same seed and data give bit-identical weights after
    fit, at any thread count (on one machine: another ISA sums in another order)."""
    seed = v.integer(seed, "seed", 0, 2**32 - 1)  # NumPy's legacy generator's range
    initializers.seed(seed)
    _random.seed(seed)
    random.seed(seed)
    np.random.seed(seed)
