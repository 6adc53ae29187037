"""ConvChain (fastdl/ops/conv_chain.py): a pointwise expansion, a depthwise layer and a
pointwise projection run as one -- the same floats as the three plans -- and compiled
models chaining MobileNetV2's inverted residual blocks where that pays."""
import importlib

import numpy as np
import pytest

import fastdl
from fastdl import layers, ops
from fastdl.models import Model
from fastdl.models.inference import ConvChainStep, compile_program

RNG = np.random.default_rng(11)
NATIVE = fastdl.backend() == "native"


def _f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _plans(cin=8, mid=48, cout=12, stride=1, padding=1, kernel=3, dilation=1):
    expand = ops.Conv2dPlan(_f32(mid, cin, 1, 1), _f32(mid), activation="relu6")
    dw = ops.Conv2dPlan(_f32(mid, 1, kernel, kernel), _f32(mid), stride=stride,
                        padding=padding, dilation=dilation, groups=mid, activation="relu6")
    project = ops.Conv2dPlan(_f32(cout, mid, 1, 1), _f32(cout))
    return expand, dw, project


def _same(got, want):
    if NATIVE:  # the same kernels over the same operands in the same order
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride,padding,kernel,dilation,size", [
    (1, 1, 3, 1, (40, 33)), (2, 1, 3, 1, (57, 64)), (1, 2, 5, 1, (19, 26)),
    (1, 2, 3, 2, (30, 30)), (2, 0, 3, 1, (21, 20)), (2, ((1, 0), (0, 1)), 3, 1, (20, 21))])
def test_chain_equals_its_plans_one_after_the_other(stride, padding, kernel, dilation, size):
    expand, dw, project = _plans(stride=stride, padding=padding, kernel=kernel,
                                 dilation=dilation, mid=300)  # several strips
    chain = ops.ConvChain(expand, dw, project)
    x = _f32(2, 8, *size)
    want = project(dw(expand(x)))
    _same(chain(x), want)
    assert chain.output_shape(x.shape) == want.shape
    out = np.full(want.shape, np.nan, np.float32)
    assert chain(x, out=out) is out
    _same(out, want)


def test_chain_without_an_expansion_and_of_any_real_dtype():
    _, dw, project = _plans(mid=8)
    chain = ops.ConvChain(None, dw, project)
    x = RNG.standard_normal((1, 8, 23, 17))  # float64, converted
    _same(chain(x), project(dw(x.astype(np.float32))))


def test_new_weights_on_a_plan_reach_the_chain():
    expand, dw, project = _plans()
    chain = ops.ConvChain(expand, dw, project)
    x = _f32(1, 8, 20, 20)
    chain(x)
    dw.set_weights(_f32(48, 1, 3, 3), _f32(48))
    expand.set_weights(_f32(48, 8, 1, 1), _f32(48))
    _same(chain(x), project(dw(expand(x))))


def test_chain_refuses_plans_that_do_not_form_a_block():
    expand, dw, project = _plans()
    with pytest.raises(ValueError, match="expand: expected a pointwise Conv2dPlan"):
        ops.ConvChain(dw, dw, project)
    with pytest.raises(ValueError, match="depthwise: expected a depthwise Conv2dPlan"):
        ops.ConvChain(expand, project, project)
    with pytest.raises(ValueError, match="project: expected a pointwise Conv2dPlan"):
        ops.ConvChain(expand, dw, "conv")
    with pytest.raises(ValueError, match="expand: its 48 output channels do not match "
                                         "depthwise's 10"):
        ops.ConvChain(expand, _plans(mid=10)[1], project)
    with pytest.raises(ValueError, match="project: its 48 input channels do not match "
                                         "depthwise's 10"):
        ops.ConvChain(None, _plans(mid=10)[1], project)
    tall = ops.Conv2dPlan(_f32(48, 1, 3, 3), None, padding=3, groups=48)
    with pytest.raises(ValueError, match=r"vertical padding \(3, 3\) must be narrower"):
        ops.ConvChain(expand, tall, project)


def test_chain_refuses_bad_inputs_naming_them():
    chain = ops.ConvChain(*_plans())
    with pytest.raises(ValueError, match="x: expected 8 channels"):
        chain(_f32(1, 7, 10, 10))
    with pytest.raises(ValueError, match="x: expected a 4-D array"):
        chain(_f32(8, 10, 10))
    with pytest.raises(ValueError, match="x"):
        ops.ConvChain(*_plans(padding=0))(_f32(1, 8, 2, 9))  # smaller than the window
    with pytest.raises(ValueError, match="out"):
        chain(_f32(1, 8, 10, 10), out=np.empty((1, 12, 10, 9), np.float32))


def test_pays_for_expansions_larger_than_the_cache_and_for_small_blocks():
    # On Intel every block with an expansion pays; elsewhere the rule is the cache's.
    intel = NATIVE and importlib.import_module("fastdl._C").cpu_vendor() == "intel"
    assert not ops.ConvChain.pays(False, 4096, 112, 112)   # no expansion: never
    assert ops.ConvChain.pays(True, 96, 8, 8) == intel     # fits any L2
    assert ops.ConvChain.pays(True, 192, 112, 112) == NATIVE  # 9.6 MB: not in any L2
    # small blocks (ShuffleNetV2's units): one parallel run instead of three tiny layers
    assert ops.ConvChain.pays(True, 24, 28, 28, 24, 24) == NATIVE      # 1.07M MACs
    assert ops.ConvChain.pays(True, 96, 7, 7, 96, 96) == NATIVE
    assert ops.ConvChain.pays(True, 384, 8, 8, 64, 64) == intel  # 3.4M MACs, 98 KB: any L2
    assert not ops.ConvChain.pays(False, 24, 28, 28, 24, 24)


# ----------------------------------------------------------------------- compiled models

def _inverted_residuals(data_format="channels_last", size=(64, 64)):
    """Two MobileNetV2 blocks (BN folded, relu6 fused): stride 1 with its residual Add,
    then stride 2 behind a ZeroPadding2D, as Keras' MobileNetV2 writes them."""
    fastdl.utils.clear_session()
    cf = data_format == "channels_first"
    inp = layers.Input((16,) + size if cf else size + (16,))
    kw = {"data_format": data_format}
    axis = 1 if cf else -1

    def bn_relu6(t):
        return layers.ReLU(6.0)(layers.BatchNormalization(axis=axis)(t))

    def block(t, stride):
        e = bn_relu6(layers.Conv2D(192, 1, use_bias=False, **kw)(t))
        if stride == 2:
            e = layers.ZeroPadding2D(((0, 1), (0, 1)), **kw)(e)
        d = bn_relu6(layers.DepthwiseConv2D(3, strides=stride, use_bias=False,
                                            padding="same" if stride == 1 else "valid",
                                            **kw)(e))
        p = layers.BatchNormalization(axis=axis)(layers.Conv2D(16, 1, use_bias=False,
                                                               **kw)(d))
        return layers.Add()([t, p]) if stride == 1 else p

    out = block(block(inp, 1), 2)
    model = Model(inp, out)
    weights = []
    for w in model.weights:
        a = RNG.standard_normal(w.shape).astype(np.float32) * 0.3
        weights.append(np.abs(a) + 0.5 if "moving_variance" in w.name else a)
    model.set_weights(weights)
    return model


def _unfused(model, x):
    from fastdl.layers import layout as L
    ys, lays = model._program.run([x], [L.KERAS])
    return L.to_keras(ys[0], lays[0])


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_compiled_model_chains_its_blocks_and_matches_the_layers(data_format):
    model = _inverted_residuals(data_format)
    chains = [s.layer for s in compile_program(model._program).steps
              if isinstance(s.layer, ConvChainStep)]
    assert len(chains) == (2 if NATIVE else 0)
    x = _f32(3, *model.inputs[0].shape[1:])
    want = _unfused(model, x)
    for _ in range(3):  # the first call runs the steps, the next ones the chains
        np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=2e-5, atol=2e-5)
    ran = [s.layer for s in model._executor().compiled.steps
           if isinstance(s.layer, ConvChainStep)]
    assert len(ran) == len(chains) and all(
        entry.chain is not None for c in ran for entry in c._chains.values())


def test_small_shufflenet_units_chain_and_match_the_layers():
    """ShuffleNetV2's branch (1x1 + BN + ReLU, depthwise 3x3 + BN, 1x1 + BN + ReLU, no
    expansion), stride 1 and 2, at sizes where only the small-block rule chains it."""
    fastdl.utils.clear_session()
    inp = layers.Input((24, 28, 28))
    kw = {"data_format": "channels_first", "use_bias": False}

    def branch(t, stride):
        t = layers.ReLU()(layers.BatchNormalization(axis=1)(layers.Conv2D(24, 1, **kw)(t)))
        t = layers.BatchNormalization(axis=1)(layers.DepthwiseConv2D(
            3, strides=stride, padding="same", **kw)(t))
        return layers.ReLU()(layers.BatchNormalization(axis=1)(layers.Conv2D(24, 1, **kw)(t)))

    model = Model(inp, branch(branch(inp, 1), 2))
    weights = [RNG.standard_normal(w.shape).astype(np.float32) * 0.3 for w in model.weights]
    model.set_weights([np.abs(a) + 0.5 if "moving_variance" in w.name else a
                       for w, a in zip(model.weights, weights)])
    chains = [s.layer for s in compile_program(model._program).steps
              if isinstance(s.layer, ConvChainStep)]
    assert len(chains) == (2 if NATIVE else 0)
    for _ in range(3):
        x = _f32(1, 24, 28, 28)
        np.testing.assert_allclose(model(x), _unfused(model, x), rtol=2e-5, atol=2e-5)


def test_weight_changes_reach_chained_blocks():
    model = _inverted_residuals()
    x = _f32(1, 64, 64, 16)
    model(x)
    model(x)
    for layer in model.layers:
        if isinstance(layer, (layers.DepthwiseConv2D, layers.BatchNormalization)):
            layer.set_weights([w * 1.5 + 0.1 for w in layer.get_weights()])
    np.testing.assert_allclose(model(x), _unfused(model, x), rtol=2e-5, atol=2e-5)


def test_models_of_unknown_size_do_not_chain():
    fastdl.utils.clear_session()
    inp = layers.Input((None, None, 16))
    e = layers.Conv2D(192, 1, activation="relu6")(inp)
    d = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(e)
    model = Model(inp, layers.Conv2D(16, 1)(d))
    assert not any(isinstance(s.layer, ConvChainStep)
                   for s in compile_program(model._program).steps)
    x = _f32(1, 40, 50, 16)
    np.testing.assert_allclose(model(x), _unfused(model, x), rtol=2e-5, atol=2e-5)


def test_a_block_the_plans_refuse_to_chain_runs_its_steps_and_never_aliases_outputs():
    """A depthwise layer padded on top by its whole window (a ZeroPadding it takes over):
    the chain refuses it, and the steps run one by one -- the model's output still a fresh
    array on every call."""
    fastdl.utils.clear_session()
    inp = layers.Input((64, 64, 16))
    e = layers.Conv2D(192, 1, activation="relu6")(inp)
    e = layers.ZeroPadding2D(((3, 0), (1, 1)))(e)
    d = layers.DepthwiseConv2D(3, activation="relu6")(e)
    model = Model(inp, layers.Conv2D(16, 1)(d))
    steps = [s.layer for s in compile_program(model._program).steps]
    assert [type(s).__name__ for s in steps] == (["ConvChainStep"] if NATIVE else
                                                 ["FusedConv"] * 3)
    x1, x2 = _f32(1, 64, 64, 16), _f32(1, 64, 64, 16)
    model(x1)  # the first call: the steps one by one, the chain refused
    y1, y2 = model(x1), model(x2)
    np.testing.assert_allclose(y1, _unfused(model, x1), rtol=2e-5, atol=2e-5)  # kept
    np.testing.assert_allclose(y2, _unfused(model, x2), rtol=2e-5, atol=2e-5)
    chained = [s.layer for s in model._executor().compiled.steps
               if isinstance(s.layer, ConvChainStep)]
    assert all(e.chain is None for c in chained for e in c._chains.values())

