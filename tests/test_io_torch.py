"""fastdl.io.from_torch: PyTorch nn.Sequential models as fastdl models with the same
outputs (eval mode), and clear refusals of what has no equivalent."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import fastdl  # noqa: E402
from fastdl.io import from_torch  # noqa: E402

RNG = np.random.default_rng(11)


def randomize_bn(module, seed=5):
    """`module` with its BatchNorms given non-trivial running statistics and affine
    parameters (tests/test_fuzz_io.py uses it too)."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.randn(m.num_features, generator=g))
                    m.bias.copy_(torch.randn(m.num_features, generator=g))
    return module


def _check(module, input_shape, batch=3, rtol=1e-4, x=None):
    torch.manual_seed(0)
    module = randomize_bn(module).eval()
    fastdl.utils.clear_session()
    model = from_torch(module, input_shape)
    if x is None:
        x = RNG.standard_normal((batch,) + tuple(input_shape)).astype(np.float32)
    with torch.inference_mode():
        want = module(torch.from_numpy(x)).numpy()
    got = model.predict(x, verbose=0)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(1.0, np.abs(want).max()))
    return model


def cifar_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 16, 2, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 2, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 2, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.3), nn.Flatten(), nn.Linear(1024, 500), nn.ReLU(), nn.Dropout(0.4),
        nn.Linear(500, 10), nn.Softmax(dim=1))


def test_cifar_cnn():
    model = _check(cifar_cnn(), (3, 32, 32))
    assert model.count_params() == 528054


def test_batchnorm_pooling_with_padding_and_activations():
    module = nn.Sequential(
        nn.Conv2d(4, 8, 3, stride=2, padding="valid", bias=False), nn.BatchNorm2d(8),
        nn.ReLU6(),
        nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1), nn.Conv2d(8, 8, 1, groups=4),
                      nn.BatchNorm2d(8, affine=False), nn.SiLU()),
        nn.AvgPool2d(2, stride=1, padding=1), nn.Hardswish(),
        nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), nn.Tanh(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 6), nn.BatchNorm1d(6),
        nn.GELU(), nn.Linear(6, 4), nn.Sigmoid())
    _check(module, (4, 21, 19))


def test_1d_and_3d():
    _check(nn.Sequential(nn.Conv1d(3, 6, 5, padding="same", dilation=2), nn.SELU(),
                         nn.MaxPool1d(2), nn.Conv1d(6, 4, 3), nn.AdaptiveMaxPool1d(1),
                         nn.Flatten(), nn.Linear(4, 2), nn.Softplus()), (3, 30))
    _check(nn.Sequential(nn.Conv3d(2, 4, 3), nn.BatchNorm3d(4), nn.ReLU(),
                         nn.AvgPool3d(2), nn.Flatten(), nn.Linear(4 * 2 * 3 * 2, 3)),
           (2, 6, 8, 6))


def test_refusals_name_the_module():
    with pytest.raises(ValueError, match=r"from_torch: 1 \(Upsample\): no fastdl "
                                         r"equivalent"):
        from_torch(nn.Sequential(nn.Conv2d(1, 1, 1), nn.Upsample(scale_factor=2)),
                   (1, 4, 4))
    with pytest.raises(ValueError, match=r"0 \(Conv2d\): padding_mode 'reflect'"):
        from_torch(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect")),
                   (1, 4, 4))
    with pytest.raises(ValueError, match=r"ceil_mode"):
        from_torch(nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)), (1, 5, 5))
    with pytest.raises(ValueError, match=r"batch_first"):
        from_torch(nn.Sequential(nn.LSTM(3, 4)), (5, 3))
    with pytest.raises(TypeError, match=r"torch.nn.Module"):
        from_torch([nn.ReLU()], (3,))
    with pytest.raises(ValueError, match=r"0 \(Conv2d\): takes 3 in channels, but its "
                                         r"input has shape \(None, 4, 8, 8\)"):
        from_torch(nn.Sequential(nn.Conv2d(3, 2, 3)), (4, 8, 8))


def test_padded_convs_transposed_convs_and_parametric_activations():
    _check(nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.LeakyReLU(0.05),
        nn.Conv2d(8, 8, (3, 1), padding=(1, 0), groups=8), nn.ELU(alpha=0.7),
        nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1),
        nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1), nn.Softmax(dim=1)), (3, 9, 10))
    _check(nn.Sequential(nn.Conv1d(2, 4, 3, padding=2, dilation=2),
                         nn.ConvTranspose1d(4, 3, 5, stride=3, padding=2), nn.Tanh()),
           (2, 11))
    _check(nn.Sequential(nn.Conv3d(2, 3, 3, padding=1),
                         nn.ConvTranspose3d(3, 2, 2, stride=2)), (2, 3, 4, 3))


def test_grouped_transposed_convs():
    _check(nn.Sequential(nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1,
                                            groups=2), nn.ReLU(),
                         nn.ConvTranspose2d(6, 6, 4, stride=2, padding=1, groups=6)), (4, 5, 6))
    _check(nn.Sequential(nn.ConvTranspose1d(6, 9, 3, stride=1, groups=3, dilation=2)), (6, 7))
    _check(nn.Sequential(nn.ConvTranspose3d(4, 2, 2, stride=2, groups=2)), (4, 3, 2, 3))


def test_grouped_transposed_conv_trains_as_torch():
    """One SGD step of a grouped Conv2DTranspose: its kernel and bias move as torch's."""
    module = nn.Sequential(nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2),
                           nn.Tanh(), nn.Flatten(), nn.Linear(6 * 9 * 9, 2))
    fastdl.utils.clear_session()
    model = from_torch(module, (4, 5, 5))
    model.compile(optimizer=fastdl.optimizers.SGD(0.1), loss="mse")
    x = RNG.standard_normal((3, 4, 5, 5)).astype(np.float32)
    y = RNG.standard_normal((3, 2)).astype(np.float32)
    model.train_on_batch(x, y)
    ((module(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2).mean().backward()
    conv = module[0]
    with torch.no_grad():
        kernel = (conv.weight - 0.1 * conv.weight.grad).numpy().transpose(2, 3, 1, 0)
        bias = (conv.bias - 0.1 * conv.bias.grad).numpy()
    layer = next(L for L in model.layers if type(L).__name__ == "Conv2DTranspose")
    assert layer.groups == 2 and layer.get_config()["groups"] == 2
    got_kernel, got_bias = layer.get_weights()
    assert got_kernel.shape == (3, 3, 3, 4)  # [*k, filters / groups, in]
    np.testing.assert_allclose(got_kernel, kernel, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_bias, bias, rtol=1e-4, atol=1e-6)


def test_grouped_transposed_conv_refuses_channels_groups_do_not_divide():
    with pytest.raises(ValueError, match="groups: expected a divisor of filters"):
        fastdl.layers.Conv2DTranspose(5, 3, groups=2)
    with pytest.raises(ValueError, match=r"groups \(2\) must divide the input channels \(3\)"):
        fastdl.models.Sequential([fastdl.layers.Input((6, 6, 3)),
                                  fastdl.layers.Conv2DTranspose(4, 3, groups=2)])


@pytest.mark.parametrize("cls, bidirectional, layers_", [
    (nn.LSTM, False, 1), (nn.LSTM, True, 2), (nn.GRU, False, 2), (nn.GRU, True, 1)])
def test_recurrent_modules(cls, bidirectional, layers_):
    rnn = cls(5, 6, num_layers=layers_, batch_first=True, bidirectional=bidirectional)

    class Seq(nn.Module):  # what people put in a Sequential: the output sequence only
        def __init__(self):
            super().__init__()
            self.rnn = rnn

        def forward(self, x):
            return self.rnn(x)[0]

    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), rnn).eval()
    fastdl.utils.clear_session()
    model = from_torch(module, (7, 4))
    x = RNG.standard_normal((3, 7, 4)).astype(np.float32)
    with torch.inference_mode():
        want = Seq()(module[1](module[0](torch.from_numpy(x)))).numpy()
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-4, atol=1e-5)


def test_embedding_first():
    module = nn.Sequential(nn.Embedding(20, 6), nn.Flatten(), nn.Linear(30, 3)).eval()
    fastdl.utils.clear_session()
    model = from_torch(module, (5,))
    x = RNG.integers(0, 20, (4, 5))
    with torch.inference_mode():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)


def test_bad_arguments_and_fastdl_refusals_name_the_argument_or_module():
    """Found by tests/test_fuzz_io.py: input_shape was not checked (None: "'NoneType'
    object is not iterable"), and fastdl's layers refused configurations (Linear with 0
    outputs, BatchNorm with eps=0, a kernel longer than the input) without naming the
    module; AvgPool1d raised AttributeError (no divisor_override)."""
    for shape, error in ((None, TypeError), ("abc", TypeError), ((3, 0), ValueError),
                         ((), ValueError), ((3, 2**40), ValueError), ((3, 1.5), TypeError)):
        with pytest.raises(error, match=r"^input_shape: "):
            from_torch(nn.Sequential(nn.ReLU()), shape)
    with pytest.raises(TypeError, match=r"^name: "):
        from_torch(nn.Sequential(nn.ReLU()), (3,), name=3)
    for module, shape, message in (
            (nn.Sequential(nn.Linear(4, 0)), (4,), r"0 \(Linear\): .*units"),
            (nn.Sequential(nn.BatchNorm1d(4, eps=0.0)), (4,), r"0 \(BatchNorm1d\): .*epsilon"),
            (nn.Sequential(nn.ReLU(), nn.Sequential(nn.Conv1d(3, 2, 9))), (3, 6),
             r"1\.0 \(Conv1d\): .*kernel")):
        with pytest.raises(ValueError, match=r"^from_torch: " + message):
            from_torch(module, shape)
    _check(nn.Sequential(nn.AvgPool1d(2, stride=3), nn.Conv1d(2, 3, 2)), (2, 11))


def test_modules_torch_computes_otherwise_or_refuses_are_refused():
    """Found by tests/test_fuzz_io.py: each was converted into a model computing something
    else than torch (or something torch refuses to compute)."""
    class Residual(nn.Sequential):
        def forward(self, x):
            return super().forward(x) + x

    class Doubled(nn.Linear):
        def forward(self, x):
            return 2 * super().forward(x)

    hooked = nn.Linear(3, 3)
    hooked.register_forward_hook(lambda m, args, out: out * 2)
    for module, shape, message in (
            (Residual(nn.Linear(3, 3)), (3,), r"Residual \(Residual\): its class overrides "
                                              r"Sequential.forward"),
            (nn.Sequential(Doubled(3, 3)), (3,), r"0 \(Doubled\): its class overrides "
                                                 r"Linear.forward"),
            (nn.Sequential(hooked), (3,), r"0 \(Linear\): it has forward hooks"),
            (nn.Sequential(nn.Softmax()), (4, 5), r"0 \(Softmax\): dim None is the batch axis"),
            (nn.Sequential(nn.Softmax(3)), (4, 5), r"0 \(Softmax\): dim 3 is out of range"),
            (nn.Sequential(nn.MaxPool1d(2, return_indices=True)), (2, 6),
             r"0 \(MaxPool1d\): return_indices"),
            (nn.Sequential(nn.AdaptiveMaxPool2d(1, return_indices=True)), (2, 6, 6),
             r"0 \(AdaptiveMaxPool2d\): return_indices"),
            (nn.Sequential(nn.AvgPool2d(3, padding=(1, 2))), (1, 4, 4),
             r"0 \(AvgPool2d\): padding \(1, 2\) is more than half the kernel"),
            (nn.Sequential(nn.AvgPool3d(4, padding=2)), (1, 3, 5, 5),
             r"0 \(AvgPool3d\): .*smaller than the kernel"),
            (nn.Sequential(nn.Linear(4, 4), nn.Embedding(10, 3)), (4,),
             r"1 \(Embedding\): an Embedding takes token indices"),
            (nn.Sequential(nn.AdaptiveAvgPool1d(1)), (2, 9, 9),
             r"0 \(AdaptiveAvgPool1d\): takes inputs of 3 axes"),
            (nn.Sequential(nn.BatchNorm1d(2)), (2, 9, 9),
             r"0 \(BatchNorm1d\): takes inputs of 2 or 3 axes"),
            (nn.Sequential(nn.Conv2d(2, 2, 2, padding="same", dilation=(2**31 - 1, 1))),
             (2, 4, 8), r"0 \(Conv2d\): padding='same' with dilation")):
        with pytest.raises(ValueError, match=r"^from_torch: " + message):
            from_torch(module, shape)
    _check(nn.Sequential(nn.Softmax()), (5,))  # dim None on 2-D inputs: dim 1, as torch


def test_transposed_convs_with_kernels_shorter_than_the_stride():
    """Found by tests/test_fuzz_io.py: Keras' 'valid' transposed conv is L * stride long
    where the kernel is shorter than the stride (torch's: (L - 1) * stride + kernel)."""
    _check(nn.Sequential(nn.ConvTranspose2d(4, 3, 2, stride=(2, 3), padding=(1, 2))),
           (4, 5, 5))
    _check(nn.Sequential(nn.ConvTranspose1d(2, 3, 1, stride=3)), (2, 5))
