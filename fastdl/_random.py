"""The generator behind fastdl's random draws while training (dropout masks, shuffling):
one numpy Generator, re-seeded by fastdl.utils.set_random_seed, so a seeded run repeats
exactly; a layer given its own seed draws from its own generator instead."""
import numpy as np

_generator = np.random.default_rng()


def generator():
    return _generator


def seed(value):
    global _generator
    _generator = np.random.default_rng(value)


def for_layer(layer):
    """The layer's own generator (from its `seed`) or the global one."""
    own = getattr(layer, "seed", None)
    if own is None:
        return _generator
    rng = getattr(layer, "_rng", None)
    if rng is None:
        rng = layer._rng = np.random.default_rng(own)
    return rng


def dropout_mask(layer, shape, rate):
    """float32 array of `shape` drawn from the layer's generator: each element kept with
    probability 1 - rate and scaled by 1 / (1 - rate), the others 0 (all 0 at rate 1)."""
    keep = for_layer(layer).random(shape, dtype=np.float32) >= rate
    return keep * np.float32(0.0 if rate == 1.0 else 1.0 / (1.0 - rate))
