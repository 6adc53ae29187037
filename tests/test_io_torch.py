"""fastdl.io.from_torch: PyTorch nn.Sequential models as fastdl models with the same
outputs (eval mode), and clear refusals of what has no equivalent."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import fastdl  # noqa: E402
from fastdl.io import from_torch  # noqa: E402

RNG = np.random.default_rng(11)


def _randomize_bn(module):
    """Non-trivial running statistics and affine parameters."""
    g = torch.Generator().manual_seed(5)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.randn(m.num_features, generator=g))
                    m.bias.copy_(torch.randn(m.num_features, generator=g))
    return module.eval()


def _check(module, input_shape, batch=3, rtol=1e-4, x=None):
    torch.manual_seed(0)
    module = _randomize_bn(module)
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
