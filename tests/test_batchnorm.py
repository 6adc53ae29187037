"""fastdl.ops.batch_norm / fold_batch_norm against torch, on every backend."""
import numpy as np
import pytest

import fastdl
from fastdl import _reference

torch = pytest.importorskip("torch")
F = torch.nn.functional
RNG = np.random.default_rng(3)


def _backends():
    out = [("numpy", _reference)]
    try:
        from fastdl import _numba
        out.append(("numba", _numba))
    except ImportError:
        pass
    if fastdl.backend() == "native":
        out.append(("native", fastdl._backend.kernels))
    return out


@pytest.mark.parametrize("name,backend", _backends())
@pytest.mark.parametrize("shape", [(2, 3), (4, 5, 7), (2, 8, 9, 11), (1, 16, 3, 4, 5),
                                   (3, 1, 17)])
def test_backend_pieces_match_reference(name, backend, shape):
    x = RNG.standard_normal(shape, dtype=np.float32) * 3 + 1
    x3 = x.reshape(shape[0], shape[1], -1)
    scale = RNG.standard_normal(shape[1]).astype(np.float32)
    shift = RNG.standard_normal(shape[1]).astype(np.float32)
    for act in (None, "relu", "silu"):
        np.testing.assert_allclose(backend.batch_norm_apply(x3, scale, shift, act, 0.01),
                                   _reference.batch_norm_apply(x3, scale, shift, act, 0.01),
                                   rtol=2e-6, atol=2e-6)
    mean, var = backend.batch_norm_statistics(x3)
    want_mean, want_var = _reference.batch_norm_statistics(x3)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(var, want_var, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("shape", [(2, 3), (4, 5, 7), (2, 8, 9, 11), (1, 16, 3, 4, 5)])
@pytest.mark.parametrize("affine", [False, True])
def test_inference_matches_torch(shape, affine):
    c = shape[1]
    x = RNG.standard_normal(shape, dtype=np.float32)
    mean = RNG.standard_normal(c).astype(np.float32)
    var = RNG.uniform(0.5, 2, c).astype(np.float32)
    gamma = RNG.standard_normal(c).astype(np.float32) if affine else None
    beta = RNG.standard_normal(c).astype(np.float32) if affine else None
    got = fastdl.ops.batch_norm(x, mean, var, gamma, beta, eps=1e-3)
    t = lambda a: None if a is None else torch.from_numpy(a)  # noqa: E731
    want = F.batch_norm(t(x), t(mean), t(var), t(gamma), t(beta), False, 0.1, 1e-3).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    relu = fastdl.ops.batch_norm(x, mean, var, gamma, beta, eps=1e-3, activation="relu")
    np.testing.assert_allclose(relu, np.maximum(want, 0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(8, 3), (4, 5, 7), (2, 8, 9, 11)])
def test_training_normalises_and_updates_running_stats_like_torch(shape):
    c = shape[1]
    x = RNG.standard_normal(shape, dtype=np.float32) * 2 + 0.5
    gamma = RNG.standard_normal(c).astype(np.float32)
    beta = RNG.standard_normal(c).astype(np.float32)
    mean, var = np.zeros(c, np.float32), np.ones(c, np.float32)
    tmean, tvar = torch.zeros(c), torch.ones(c)
    for _ in range(3):
        got = fastdl.ops.batch_norm(x, mean, var, gamma, beta, training=True, momentum=0.2)
        want = F.batch_norm(torch.from_numpy(x), tmean, tvar, torch.from_numpy(gamma),
                            torch.from_numpy(beta), True, 0.2, 1e-5).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(mean, tmean.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(var, tvar.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer", ["conv", "linear"])
def test_folding_into_a_plan_equals_layer_then_batch_norm(layer):
    c = 6
    mean = RNG.standard_normal(c).astype(np.float32)
    var = RNG.uniform(0.5, 2, c).astype(np.float32)
    gamma = RNG.standard_normal(c).astype(np.float32)
    beta = RNG.standard_normal(c).astype(np.float32)
    if layer == "conv":
        x = RNG.standard_normal((2, 4, 9, 9), dtype=np.float32)
        w = RNG.standard_normal((c, 4, 3, 3), dtype=np.float32)
        b = RNG.standard_normal(c).astype(np.float32)
        plain = fastdl.ops.conv2d(x, w, b, padding=1)
        fw, fb = fastdl.ops.fold_batch_norm(w, b, mean, var, gamma, beta)
        folded = fastdl.ops.Conv2dPlan(fw, fb, padding=1)(x)
    else:
        x = RNG.standard_normal((5, 4), dtype=np.float32)
        w = RNG.standard_normal((c, 4), dtype=np.float32)
        plain = fastdl.ops.linear(x, w)
        fw, fb = fastdl.ops.fold_batch_norm(w, None, mean, var, gamma, beta)
        folded = fastdl.ops.LinearPlan(fw, fb)(x)
    want = fastdl.ops.batch_norm(plain, mean, var, gamma, beta)
    np.testing.assert_allclose(folded, want, rtol=1e-4, atol=1e-4)


def test_empty_batch_and_nan():
    x = np.zeros((0, 3, 4, 4), np.float32)
    assert fastdl.ops.batch_norm(x, np.zeros(3), np.ones(3)).shape == (0, 3, 4, 4)
    x = np.ones((1, 2, 3), np.float32)
    x[0, 1, 2] = np.nan
    y = fastdl.ops.batch_norm(x, np.zeros(2), np.ones(2))
    assert np.isnan(y[0, 1, 2]) and np.isfinite(y[0, 0]).all()


@pytest.mark.parametrize("kwargs,error,name", [
    (dict(running_mean=np.zeros(4)), ValueError, "running_mean"),
    (dict(weight=np.ones(2)), ValueError, "weight"),
    (dict(momentum=1.5), ValueError, "momentum"),
    (dict(eps=0), ValueError, "eps"),
    (dict(training="yes"), TypeError, "training"),
    (dict(training=True, running_mean=[0.0, 0.0, 0.0]), TypeError, "running_mean"),
    (dict(training=True, running_var=np.ones(3, np.int64)), TypeError, "running_var"),
    (dict(running_mean=None), ValueError, "running_mean"),
])
def test_bad_arguments(kwargs, error, name):
    args = dict(running_mean=np.zeros(3), running_var=np.ones(3))
    args.update(kwargs)
    with pytest.raises(error, match=name):
        fastdl.ops.batch_norm(np.ones((2, 3, 4), np.float32), **args)


def test_training_with_one_value_per_channel_is_refused():
    with pytest.raises(ValueError, match="x:"):
        fastdl.ops.batch_norm(np.ones((1, 3), np.float32), None, None, training=True)
