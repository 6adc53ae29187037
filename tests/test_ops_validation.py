"""The public boundary (fastdl.ops): bad input raises ValueError/TypeError whose message
starts with the name of the offending argument; odd but valid input (any strides, other
real dtypes, empty batches, NaN/Inf) works and gives the same values as clean input.

These tests run on whichever backend FASTDL_BACKEND selects: validation happens in
fastdl/ before any backend is called.
"""
import numpy as np
import pytest

from fastdl import ops
from fastdl import _reference as reference

F32 = np.float32


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(F32)


X = rand(2, 3, 8, 7, seed=1)
W = rand(4, 3, 3, 3, seed=2)
B = rand(4, seed=3)


def raises(exc, name, fn, *args, **kwargs):
    """fn(*args, **kwargs) raises `exc` whose message starts with '<name>:'."""
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert str(info.value).startswith(f"{name}:"), f"message does not name {name!r}: {info.value}"
    return str(info.value)


# ---------------------------------------------------------------------------- bad input

CONV_VALUE_ERRORS = [
    # (argument named, x, w, b, kwargs)
    ("x", X[0, 0], W, None, {}),                                      # x 2-D
    ("x", X[None], W, None, {}),                                      # x 5-D
    ("w", X, W[0], None, {}),                                         # w 3-D
    ("w", X, W.reshape(4, 27), None, {}),                             # w 2-D
    ("x", rand(2, 2, 8, 7), W, None, {}),                             # channel mismatch
    ("x", X, rand(4, 1, 3, 3), None, dict(groups=2)),                 # 2 channels != 3
    ("x", rand(1, 4, 8, 7), rand(4, 1, 3, 3), None, dict(groups=2)),  # groups*1 = 2 != 4
    ("groups", X, W, None, dict(groups=0)),
    ("groups", X, W, None, dict(groups=-2)),
    ("groups", rand(1, 3, 5, 5), rand(4, 1, 3, 3), None, dict(groups=3)),  # 3 does not divide 4
    ("stride", X, W, None, dict(stride=0)),
    ("stride", X, W, None, dict(stride=(1, -1))),
    ("stride", X, W, None, dict(stride=(1, 1, 1))),
    ("dilation", X, W, None, dict(dilation=0)),
    ("dilation", X, W, None, dict(dilation=(-1, 1))),
    ("padding", X, W, None, dict(padding=-1)),
    ("padding", X, W, None, dict(padding=(0, -2))),
    ("padding", X, W, None, dict(padding=((0, 1), (-1, 0)))),
    ("padding", X, W, None, dict(padding=(1, 2, 3))),
    ("padding", X, W, None, dict(padding="full")),
    ("padding", X, W, None, dict(padding="same", stride=2)),
    ("padding", X, W, None, dict(padding="same", stride=(1, 2))),
    ("x", X[:, :, :2, :], W, None, {}),                               # kernel taller than input
    ("x", X, rand(4, 3, 1, 8), None, {}),                             # kernel wider than input
    ("x", X, W, None, dict(dilation=(4, 1))),                         # dilated span 9 > 8
    ("x", X[:, :, :1, :1], W, None, dict(padding=((1, 0), (0, 1)))),  # 2x2 padded < 3x3
    ("activation", X, W, None, dict(activation="gelu")),
    ("activation", X, W, None, dict(activation="")),
    ("b", X, W, rand(5), {}),
    ("b", X, W, rand(4, 1), {}),
    ("b", X, W, rand(1, 4), {}),
    ("w", X, rand(4, 0, 3, 3), None, {}),                             # no input channels
]


@pytest.mark.parametrize("name,x,w,b,kwargs", CONV_VALUE_ERRORS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CONV_VALUE_ERRORS)])
def test_conv2d_value_errors_name_the_argument(name, x, w, b, kwargs):
    raises(ValueError, name, ops.conv2d, x, w, b, **kwargs)
    # the plan refuses the same things, at construction or at call
    with pytest.raises(ValueError) as info:
        ops.Conv2dPlan(w, b, **kwargs)(x)
    assert str(info.value).startswith(f"{name}:"), str(info.value)


def test_conv2d_error_messages_say_what_was_expected_and_what_came():
    msg = raises(ValueError, "x", ops.conv2d, rand(2, 5, 8, 7), W)
    assert "3" in msg and "(2, 5, 8, 7)" in msg
    msg = raises(ValueError, "groups", ops.conv2d, rand(1, 3, 5, 5), rand(4, 1, 3, 3), groups=3)
    assert "4" in msg and "3" in msg
    msg = raises(ValueError, "b", ops.conv2d, X, W, rand(5))
    assert "(4,)" in msg and "(5,)" in msg
    msg = raises(ValueError, "activation", ops.conv2d, X, W, activation="gelu")
    assert "gelu" in msg and "relu" in msg


CONV_TYPE_ERRORS = [
    ("stride", dict(stride=1.5)),
    ("stride", dict(stride="1")),
    ("dilation", dict(dilation=(1, 2.0))),
    ("groups", dict(groups=1.0)),
    ("padding", dict(padding=1.5)),
    ("activation", dict(activation=3)),
    ("activation", dict(activation=np.maximum)),
    ("negative_slope", dict(activation="leaky_relu", negative_slope="0.1")),
]


@pytest.mark.parametrize("name,kwargs", CONV_TYPE_ERRORS, ids=[c[0] for c in CONV_TYPE_ERRORS])
def test_conv2d_type_errors_name_the_argument(name, kwargs):
    raises(TypeError, name, ops.conv2d, X, W, B, **kwargs)


NON_REAL = {
    "complex": lambda a: a.astype(np.complex64),
    "object": lambda a: a.astype(object),
    "string": lambda a: a.astype(str),
    "bytes": lambda a: a.astype(bytes),
    "datetime": lambda a: a.astype(np.int64).astype("M8[s]"),
}


@pytest.mark.parametrize("kind", NON_REAL)
@pytest.mark.parametrize("arg", ["x", "w", "b", "all"])
def test_conv2d_non_real_dtypes_raise_type_error(kind, arg):
    make = NON_REAL[kind]
    x, w, b = X, W, B
    if arg in ("x", "all"):
        x = make(X)
    if arg in ("w", "all"):
        w = make(W)
    if arg in ("b", "all"):
        b = make(B)
    with pytest.raises(TypeError) as info:
        ops.conv2d(x, w, b)
    msg = str(info.value)
    if arg != "all":  # the message names the offending argument
        assert msg.startswith(f"{arg}:") or f" {arg} " in msg, msg
    # the plan path, where x's dtype does not have to match w's: x is checked on its own
    if arg in ("x", "all"):
        raises(TypeError, "x", ops.Conv2dPlan(W, B), make(X))
    else:
        raises(TypeError, arg, ops.Conv2dPlan, w, None if arg == "w" else b)


def test_non_real_x_is_reported_as_x_not_as_a_dtype_mismatch_of_w():
    """conv2d(complex x, float32 w): the problem is x's dtype; a message telling the user
    that *w* should be complex64 points the wrong way."""
    with pytest.raises(TypeError) as info:
        ops.conv2d(X.astype(np.complex64), W)
    assert str(info.value).startswith("x:"), str(info.value)
    with pytest.raises(TypeError) as info:
        ops.linear(rand(2, 3).astype(object), rand(4, 3))
    assert str(info.value).startswith("x:"), str(info.value)


@pytest.mark.parametrize("kind", NON_REAL)
def test_gemm_and_unfold_non_real_dtypes_raise_type_error(kind):
    make = NON_REAL[kind]
    a, bm = rand(3, 4), rand(4, 5)
    raises(TypeError, "a", ops.matmul, make(a), bm)
    raises(TypeError, "b", ops.matmul, a, make(bm))
    raises(TypeError, "w", ops.LinearPlan, make(rand(5, 4)))
    raises(TypeError, "b", ops.LinearPlan, rand(5, 4), make(rand(5)))
    raises(TypeError, "x", ops.LinearPlan(rand(5, 4)), make(a))
    raises(TypeError, "x", ops.im2col, make(X), 3)
    raises(TypeError, "cols", ops.col2im, make(rand(1, 27, 30)), (7, 8), 3)
    with pytest.raises(TypeError):
        ops.linear(make(a), make(rand(5, 4)))


@pytest.mark.parametrize("other", [np.float64, np.float16, np.int32, np.bool_])
def test_functional_ops_convert_mixed_real_dtypes(other):
    """One rule everywhere (DESIGN.md 5): every real dtype is converted to float32, also when
    the arguments differ (the functional forms used to refuse what the plans accepted)."""
    def same(got, want):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    x2, w2, b2 = (a.astype(other).astype(F32) for a in (X, W, B))  # what `other` can hold
    same(ops.conv2d(X, W.astype(other)), ops.conv2d(X, w2))
    same(ops.conv2d(X.astype(other), W), ops.conv2d(x2, W))
    same(ops.conv2d(X, W, B.astype(other)), ops.conv2d(X, W, b2))
    same(ops.Conv2dPlan(W, B.astype(other))(X), ops.conv2d(X, W, b2))
    a, w, b = rand(2, 3), rand(4, 3), rand(4)
    same(ops.linear(a, w.astype(other)), ops.linear(a, w.astype(other).astype(F32)))
    same(ops.linear(a, w, b.astype(other)), ops.linear(a, w, b.astype(other).astype(F32)))
    same(ops.LinearPlan(w, b.astype(other))(a), ops.linear(a, w, b.astype(other).astype(F32)))


def test_linear_value_errors_name_the_argument():
    raises(ValueError, "x", ops.linear, rand(2, 3), rand(4, 5))
    raises(ValueError, "x", ops.linear, rand(2, 5, 3), rand(4, 5))
    raises(ValueError, "w", ops.linear, rand(2, 3), rand(4, 3, 1))
    raises(ValueError, "w", ops.linear, rand(2, 3), rand(3))
    raises(ValueError, "b", ops.linear, rand(2, 3), rand(4, 3), rand(3))
    raises(ValueError, "b", ops.linear, rand(2, 3), rand(4, 3), rand(4, 1))
    raises(ValueError, "activation", ops.linear, rand(2, 3), rand(4, 3), activation="softmax")
    raises(TypeError, "negative_slope", ops.linear, rand(2, 3), rand(4, 3),
           activation="leaky_relu", negative_slope=None)
    raises(ValueError, "x", ops.LinearPlan(rand(4, 3)), rand(3, 2))


def test_linear_refuses_a_scalar_x():
    """torch.nn.functional.linear needs x with at least one dimension; a 0-d x must not
    be silently treated as a vector of length 1."""
    raises(ValueError, "x", ops.linear, np.float32(2.0), rand(4, 1))
    raises(ValueError, "x", ops.LinearPlan(rand(4, 1)), np.array(2.0, dtype=F32))


def test_matmul_value_errors_name_the_argument():
    raises(ValueError, "b", ops.matmul, rand(2, 3), rand(4, 5))
    raises(ValueError, "b", ops.matmul, rand(2, 3), rand(2, 3))
    raises(ValueError, "a", ops.matmul, rand(3), rand(3, 2))
    raises(ValueError, "a", ops.matmul, rand(1, 2, 3), rand(3, 2))
    raises(ValueError, "b", ops.matmul, rand(2, 3), rand(3))
    msg = raises(ValueError, "b", ops.matmul, rand(2, 3), rand(4, 5))
    assert "3" in msg and "(4, 5)" in msg


def test_im2col_col2im_errors_name_the_argument():
    raises(ValueError, "x", ops.im2col, rand(3, 3), 3)
    raises(ValueError, "x", ops.im2col, rand(1, 1, 2, 3, 3), 3)
    raises(ValueError, "x", ops.im2col, rand(1, 1, 2, 5), 3)              # kernel too tall
    raises(ValueError, "kernel_size", ops.im2col, X, 0)
    raises(ValueError, "kernel_size", ops.im2col, X, (3, 3, 3, 3))  # 3 values: 3-D
    raises(ValueError, "stride", ops.im2col, X, 3, stride=0)
    raises(ValueError, "dilation", ops.im2col, X, 3, dilation=(1, 0))
    raises(ValueError, "padding", ops.im2col, X, 3, padding=-1)
    raises(TypeError, "padding", ops.im2col, X, 3, padding="same")
    cols = ops.im2col(X, 3)  # (2, 27, 30)
    raises(ValueError, "cols", ops.col2im, cols[:, :, :-1], (8, 7), 3)   # wrong column count
    raises(ValueError, "cols", ops.col2im, cols, (8, 8), 3)              # for another size
    raises(ValueError, "cols", ops.col2im, cols[:, :-1], (8, 7), 3)      # rows not C*9
    raises(ValueError, "cols", ops.col2im, cols[0, 0], (8, 7), 3)        # 1-D
    raises(ValueError, "output_size", ops.col2im, cols, (8, 0), 3)
    raises(ValueError, "output_size", ops.col2im, cols, (8, 7, 1), 3)
    raises(ValueError, "output_size", ops.col2im, cols, (2, 2), 3)       # kernel does not fit
    msg = raises(ValueError, "cols", ops.col2im, cols[:, :, :-1], (8, 7), 3)
    assert "30" in msg and "29" in msg


def test_oversized_outputs_are_refused_before_allocating():
    tiny = np.zeros((1, 1, 1, 1), F32)
    most = 2**31 - 1  # the largest padding: (2**32 - 1)**2 output positions, over 2**60
    with pytest.raises(ValueError, match=r"^x, stride, padding, dilation: .* too large"):
        ops.conv2d(tiny, tiny, padding=most)
    with pytest.raises(ValueError, match=r"^x, kernel_size: .* too large"):
        ops.im2col(tiny, 1, padding=most)
    # Beyond any axis a machine holds: refused as the argument it is.
    with pytest.raises(ValueError, match=r"^padding: expected values <= 2147483647"):
        ops.conv2d(tiny, tiny, padding=2 ** 40)


# ---------------------------------------------------------------------------- what must work

def views():
    """(name, make_view) pairs: make_view(a) returns a non-contiguous or negative-stride
    view with the values of a (a is C-contiguous)."""
    return [
        ("reversed_last", lambda a: np.ascontiguousarray(a[..., ::-1])[..., ::-1]),
        ("reversed_first", lambda a: np.ascontiguousarray(a[::-1])[::-1]),
        ("transposed", lambda a: np.ascontiguousarray(a.T).T),
        ("strided", lambda a: np.repeat(a, 2, axis=-1)[..., ::2]),
        ("fortran", lambda a: np.asfortranarray(a)),
    ]


@pytest.mark.parametrize("view_name,view", views(), ids=[v[0] for v in views()])
def test_any_strides_give_the_contiguous_result(view_name, view):
    x8 = rand(2, 8, 9, 10, seed=5)  # 8 channels: the Winograd path too
    w8 = rand(8, 8, 3, 3, seed=6)
    for x, w, b, kw in [(X, W, B, dict(padding=1, stride=2)), (x8, w8, None, dict(padding=1)),
                        (X, rand(3, 1, 3, 3), None, dict(groups=3, padding=(0, 1)))]:
        vx, vw = view(x), view(w)
        assert not (vx.flags.c_contiguous and vw.flags.c_contiguous) or view_name == "fortran"
        np.testing.assert_array_equal(vx, x)
        expected = ops.conv2d(x, w, b, **kw)
        np.testing.assert_array_equal(ops.conv2d(vx, vw, None if b is None else view(b), **kw),
                                      expected, err_msg=view_name)
        np.testing.assert_array_equal(ops.Conv2dPlan(vw, b, **kw)(vx), expected)
    a, bm = rand(7, 20, seed=7), rand(20, 9, seed=8)
    np.testing.assert_array_equal(ops.matmul(view(a), view(bm)), ops.matmul(a, bm))
    wl, bl = rand(9, 20, seed=9), rand(9, seed=10)
    np.testing.assert_array_equal(ops.linear(view(a), view(wl), view(bl), "relu"),
                                  ops.linear(a, wl, bl, "relu"))
    x3 = rand(2, 3, 5, 20, seed=11)
    np.testing.assert_array_equal(ops.linear(view(x3), wl), ops.linear(x3, wl))
    np.testing.assert_array_equal(ops.im2col(view(X), 3, padding=1), ops.im2col(X, 3, padding=1))
    cols = rand(2, 27, 56, seed=12)
    np.testing.assert_array_equal(ops.col2im(view(cols), (8, 7), 3, padding=1),
                                  ops.col2im(cols, (8, 7), 3, padding=1))


def test_reversed_input_is_read_in_its_logical_order():
    """x[:, :, ::-1] is a different image: the result must be that of the flipped copy
    (not of the underlying buffer)."""
    flipped = X[:, :, ::-1]
    assert flipped.strides[2] < 0
    expected = reference.conv(np.ascontiguousarray(flipped), W, B, (1, 1), (1, 1, 1, 1),
                              (1, 1), 1, None, 0.0)
    y = ops.conv2d(flipped, W, B, padding=1)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(y, ops.conv2d(np.ascontiguousarray(flipped), W, B, padding=1))
    transposed = rand(3, 7, 5, seed=3).transpose(0, 2, 1)[None]   # (1, 3, 5, 7), strided
    np.testing.assert_array_equal(ops.conv2d(transposed, W, padding=1),
                                  ops.conv2d(np.ascontiguousarray(transposed), W, padding=1))


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int64, np.int8, np.uint8, np.bool_])
def test_other_real_dtypes_are_converted_to_float32(dtype):
    def cast(a):
        return (a > 0) if dtype is np.bool_ else (a * 3).astype(dtype)
    x, w, b = cast(X), cast(W), cast(B)
    expected = ops.conv2d(x.astype(F32), w.astype(F32), b.astype(F32), padding=1)
    y = ops.conv2d(x, w, b, padding=1)
    assert y.dtype == F32
    np.testing.assert_array_equal(y, expected)
    # plans take any real x whatever w's dtype
    y = ops.Conv2dPlan(W, B, padding=1)(x)
    assert y.dtype == F32
    np.testing.assert_array_equal(y, ops.conv2d(x.astype(F32), W, B, padding=1))
    a, bm = cast(rand(4, 6)), cast(rand(6, 3))
    y = ops.matmul(a, bm)
    assert y.dtype == F32
    np.testing.assert_array_equal(y, ops.matmul(a.astype(F32), bm.astype(F32)))
    y = ops.linear(a, bm.T)
    assert y.dtype == F32
    np.testing.assert_array_equal(y, ops.linear(a.astype(F32), np.ascontiguousarray(bm.T, F32)))
    cols = ops.im2col(x, 3)
    assert cols.dtype == F32
    np.testing.assert_array_equal(cols, ops.im2col(x.astype(F32), 3))
    y = ops.col2im(cast(rand(2, 27, 30)), (8, 7), 3)
    assert y.dtype == F32


def test_nested_lists_are_accepted_like_arrays():
    x = rand(1, 2, 4, 4)
    w = rand(3, 2, 3, 3)
    np.testing.assert_array_equal(ops.conv2d(x.astype(np.float64).tolist(),
                                             w.astype(np.float64).tolist()),
                                  ops.conv2d(x, w))
    np.testing.assert_array_equal(ops.matmul([[1, 2], [3, 4]], [[1], [1]]),
                                  np.array([[3], [7]], F32))


@pytest.mark.parametrize("channels", [3, 8])
def test_zero_batch_returns_empty_arrays_of_the_right_shape(channels):
    x = np.zeros((0, channels, 9, 8), F32)
    w = rand(5, channels, 3, 3)
    y = ops.conv2d(x, w, rand(5), stride=(2, 1), padding=((1, 0), (0, 2)), activation="relu")
    assert y.shape == (0, 5, 4, 8) and y.dtype == F32
    assert ops.Conv2dPlan(w, padding="same")(x).shape == (0, 5, 9, 8)
    assert ops.conv2d(np.zeros((0, channels, 1, 1), F32), rand(channels, 1, 1, 1),
                      groups=channels).shape == (0, channels, 1, 1)
    assert ops.linear(np.zeros((0, 7), F32), rand(4, 7), rand(4)).shape == (0, 4)
    assert ops.linear(np.zeros((3, 0, 7), F32), rand(4, 7)).shape == (3, 0, 4)
    assert ops.matmul(np.zeros((0, 7), F32), rand(7, 4)).shape == (0, 4)
    assert ops.matmul(rand(3, 7), np.zeros((7, 0), F32)).shape == (3, 0)
    cols = ops.im2col(x, 3, padding=1)
    assert cols.shape == (0, channels * 9, 72) and cols.dtype == F32
    y = ops.col2im(cols, (9, 8), 3, padding=1)
    assert y.shape == (0, channels, 9, 8) and y.dtype == F32


def test_zero_out_channels_returns_an_empty_array():
    assert ops.conv2d(X, np.zeros((0, 3, 3, 3), F32)).shape == (2, 0, 6, 5)
    assert ops.linear(rand(2, 3), np.zeros((0, 3), F32)).shape == (2, 0)


def _nan_image(channels, value):
    x = rand(1, channels, 11, 12, seed=4)
    x[0, 1, 5, 6] = value
    return x


def _receptive_field_mask(shape, row, col, kernel=3, pad=1):
    """Outputs (i, j) whose 3x3 receptive field (stride 1, pad 1) holds input (row, col)."""
    mask = np.zeros(shape, bool)
    for i in range(shape[0]):
        for j in range(shape[1]):
            mask[i, j] = (i - pad <= row <= i - pad + kernel - 1
                          and j - pad <= col <= j - pad + kernel - 1)
    return mask


@pytest.mark.parametrize("channels", [3, 8])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_propagate_into_their_receptive_field(channels, value):
    """No crash, non-finite (NaN for NaN) wherever the receptive field holds the bad pixel,
    finite away from it (Winograd tiles may spread it over at most their own outputs)."""
    x = _nan_image(channels, value)
    w = rand(8, channels, 3, 3, seed=5)
    y = ops.conv2d(x, w, rand(8), padding=1)
    inside = _receptive_field_mask(y.shape[2:], 5, 6)
    for o in range(y.shape[1]):
        if np.isnan(value):
            assert np.isnan(y[0, o][inside]).all()
        else:
            assert not np.isfinite(y[0, o][inside]).any()
        far = ~_receptive_field_mask(y.shape[2:], 5, 6, kernel=3 + 8, pad=1 + 4)
        assert np.isfinite(y[0, o][far]).all()


@pytest.mark.parametrize("channels", [3, 8])
def test_nan_appears_only_where_the_receptive_field_holds_it_as_in_torch(channels):
    """PyTorch semantics: outputs whose receptive field is clean stay finite. With 8
    channels the native backend takes the Winograd path, whose tile transforms mix every
    pixel of a tile."""
    torch = pytest.importorskip("torch")
    x = _nan_image(channels, np.nan)
    w = rand(8, channels, 3, 3, seed=5)
    y = ops.conv2d(x, w, None, padding=1)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                          padding=1).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    assert np.isnan(expected).sum() == 9 * 8


def test_nan_and_inf_in_linear_matmul_im2col_col2im():
    x = rand(4, 6)
    x[1, 2] = np.nan
    x[3, 0] = np.inf
    y = ops.linear(x, rand(5, 6), rand(5), "sigmoid")
    assert np.isnan(y[1]).all() and not np.isnan(y[[0, 2]]).any()
    assert not np.isnan(y[0]).any() and np.isfinite(y[2]).all()
    m = ops.matmul(x, rand(6, 3))
    assert np.isnan(m[1]).all() and np.isfinite(m[[0, 2]]).all() and not np.isfinite(m[3]).any()
    img = rand(1, 1, 5, 5)
    img[0, 0, 2, 2] = np.nan
    cols = ops.im2col(img, 3)
    assert np.isnan(cols).sum() == 9
    back = ops.col2im(cols, (5, 5), 3)
    assert np.isnan(back).sum() == 1 and np.isnan(back[0, 0, 2, 2])


@pytest.mark.parametrize("activation", [None, "relu", "relu6", "leaky_relu", "sigmoid", "tanh",
                                        "silu"])
def test_fused_activations_keep_nan(activation):
    x = _nan_image(3, np.nan)
    y = ops.conv2d(x, rand(4, 3, 1, 1), None, activation=activation)
    assert np.isnan(y[0, :, 5, 6]).all()
    assert np.isnan(y).sum() == 4


def test_a_missing_array_is_named():
    """conv2d(x, None) and friends: a TypeError naming the argument (it was an IndexError)."""
    raises(TypeError, "w", ops.conv2d, X, None)
    raises(TypeError, "x", ops.conv2d, None, W)
    raises(TypeError, "w", ops.linear, rand(2, 3), None)
    raises(TypeError, "w", ops.conv_transpose2d, X, None)
    raises(TypeError, "w", ops.Conv1dPlan, None)
    with pytest.raises(TypeError, match="got None"):
        ops.conv3d(np.ones((1, 1, 3, 3, 3), F32), None)
