"""The compiled program's shared arena (fastdl/models/inference.py, _share_buffers): after
the first call with new input shapes, fused steps write into views of one arena placed by
liveness. Calls after it must give what the first call gave, for every graph shape: chains,
residuals, branches read late, views (Flatten, Reshape) of a fused output, concatenations
(reused buffers too), several outputs, several input shapes interleaved."""
import numpy as np
import pytest

import fastdl
from fastdl import layers
from fastdl.models import Model, Sequential

RNG = np.random.default_rng(13)


def _residual_net():
    x = layers.Input((12, 12, 3))
    a = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    b = layers.Conv2D(8, 3, padding="same")(a)
    b = layers.BatchNormalization()(b)
    b = layers.Activation("relu")(b)
    c = layers.Conv2D(8, 1, activation="relu")(b)
    s = layers.Add()([a, c])                          # a is read long after it was made
    flat = layers.Flatten()(s)                        # a view of a fused output...
    r = layers.Reshape((8, 144))(layers.Conv2D(8, 1)(s))
    d = layers.Dense(5, activation="relu")(flat)      # ...read by a later fused step
    return Model(x, [d, r, layers.GlobalAveragePooling2D()(c)])


def _fire_net():
    """SqueezeNet's fire modules: concatenations read by convolutions, one an output."""
    x = layers.Input((10, 10, 6))
    squeeze = layers.Conv2D(4, 1, activation="relu")(x)
    fire = layers.Concatenate()([layers.Conv2D(5, 1, activation="relu")(squeeze),
                                 layers.Conv2D(3, 3, padding="same", activation="relu")(squeeze)])
    again = layers.Conv2D(4, 1, activation="relu")(fire)
    last = layers.Concatenate(axis=1)([again, layers.Conv2D(4, 3, padding="same")(again)])
    return Model(x, [layers.GlobalAveragePooling2D()(fire), last])


def _chain():
    return Sequential([layers.Input((16, 16, 4)), layers.Conv2D(8, 3, activation="relu"),
                       layers.MaxPooling2D(2), layers.Conv2D(16, 3, activation="relu"),
                       layers.Flatten(), layers.Dense(10)])


def _pool_net():
    """Pooling steps (reused buffers too): one read by two later steps, one the layer pads
    itself ('same' with more after than before), one a model output."""
    x = layers.Input((11, 11, 3))
    a = layers.Conv2D(6, 3, activation="relu")(x)
    p = layers.MaxPooling2D(3, strides=2, padding="valid")(a)
    b = layers.Conv2D(6, 1)(p)
    q = layers.AveragePooling2D(2, strides=1, padding="same")(layers.Add()([p, b]))
    return Model(x, [layers.Conv2D(4, 1)(q), layers.MaxPooling2D(2, padding="same")(q)])


@pytest.mark.parametrize("build", [_residual_net, _chain, _fire_net, _pool_net])
def test_later_calls_equal_the_first(build):
    fastdl.utils.clear_session()
    model = build()
    shape = model.input_shape[1:]
    xs = {n: RNG.standard_normal((n,) + shape).astype(np.float32) for n in (1, 3, 4)}
    first = {n: model(xs[n]) for n in xs}  # private buffers; each shape's arena after it
    for _ in range(3):
        for n in (4, 1, 3):  # interleaved: each input shape has its own arena
            again = model(xs[n])
            for a, b in zip(_listed(first[n]), _listed(again), strict=True):
                np.testing.assert_array_equal(a, b)


def _listed(y):
    return y if isinstance(y, list) else [y]


@pytest.mark.parametrize("build", [_residual_net, _fire_net, _pool_net])
def test_outputs_do_not_alias_the_arena(build):
    fastdl.utils.clear_session()
    model = build()
    x = RNG.standard_normal((2,) + model.input_shape[1:]).astype(np.float32)
    model(x)
    kept = [y.copy() for y in model(x)]
    held = model(x)
    model(RNG.standard_normal(x.shape).astype(np.float32))  # writes the arena
    for a, b in zip(held, kept):
        np.testing.assert_array_equal(a, b)


def _layer_by_layer(model, x):
    """The model's outputs for x from its graph evaluated layer by layer (no compiled
    program)."""
    layout = fastdl.layers.layout
    ys, lays = model._executor().program.run([x], [layout.KERAS])
    return [layout.to_keras(y, lay) for y, lay in zip(ys, lays, strict=True)]


@pytest.mark.parametrize("build, steps, reused, batch", [
    (_fire_net, ("ConcatStep", "ConcatenatedConvsStep"), [True, False], 1),  # 2nd: an output
    (_pool_net, ("PoolStep",), [True, True, False], 2)])                    # 3rd: an output
def test_buffered_steps_write_into_the_arena_and_match_the_layers(build, steps, reused,
                                                                  batch):
    from fastdl.models import inference
    fastdl.utils.clear_session()
    model = build()
    x = RNG.standard_normal((batch,) + model.input_shape[1:]).astype(np.float32)
    first = model(x)
    kinds = tuple(getattr(inference, name) for name in steps)
    found = [s.layer for s in model._executor().compiled.steps if isinstance(s.layer, kinds)]
    assert [f.reuse_output for f in found] == reused
    buffer = found[0]._buffers[found[0].last_out_shape]
    for _ in range(2):
        again = model(x)
    assert found[0]._buffers[found[0].last_out_shape] is buffer  # the arena's view, kept
    for a, b, c in zip(first, again, _layer_by_layer(model, x), strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)
