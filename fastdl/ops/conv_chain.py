"""ConvChain: a depthwise-separable block -- an optional pointwise expansion, a depthwise
convolution, a pointwise projection (MobileNet's blocks) -- as one op over three
Conv2dPlans."""
from fastdl import _conv_geometry as geometry
from fastdl import _validate as v
from fastdl._backend import kernels
from fastdl.ops.conv import Conv2dPlan


def _check_pointwise(plan, name):
    if not isinstance(plan, Conv2dPlan) or plan.kernel_size != (1, 1) or plan.stride != (
            1, 1) or any(plan.padding) or plan.groups != 1:
        raise ValueError(f"{name}: expected a pointwise Conv2dPlan (1x1, stride 1, no padding, "
                         f"groups 1), got {plan!r}")


class ConvChain:
    """`ConvChain(expand, depthwise, project)(x)` computes `project(depthwise(expand(x)))`
    (expand may be None) with the plans' own fused biases and activations: the same floats,
    bit for bit, except where `expand` has 4 or fewer input channels (its own call runs
    another kernel there; the chain rounds within float32 tolerance of it).

    The native backend runs it strip by strip of output rows: the expanded tensor (six
    times the block's channels in MobileNetV2) lives in a per-thread scratch that stays in
    L2 instead of going out to memory and back. `ConvChain.pays(...)` says where that is
    faster than the three plans (compiled models chain exactly there). The plans are
    referenced, not copied: set_weights on them reaches the chain."""

    def __init__(self, expand, depthwise, project):
        if expand is not None:
            _check_pointwise(expand, "expand")
        if not isinstance(depthwise, Conv2dPlan) or not (
                depthwise.groups == depthwise.in_channels == depthwise.out_channels):
            raise ValueError(f"depthwise: expected a depthwise Conv2dPlan (groups == "
                             f"in_channels == out_channels), got {depthwise!r}")
        window = (depthwise.kernel_size[0] - 1) * depthwise.dilation[0] + 1
        top, bottom = depthwise.padding[:2]  # padding: flat (before, after) per axis
        if max(top, bottom) >= window:
            raise ValueError(f"depthwise: vertical padding ({top}, {bottom}) must be narrower "
                             f"than the window ({window} rows)")
        _check_pointwise(project, "project")
        if expand is not None and expand.out_channels != depthwise.in_channels:
            raise ValueError(f"expand: its {expand.out_channels} output channels do not match "
                             f"depthwise's {depthwise.in_channels}")
        if project.in_channels != depthwise.out_channels:
            raise ValueError(f"project: its {project.in_channels} input channels do not match "
                             f"depthwise's {depthwise.out_channels} outputs")
        self.expand, self.depthwise, self.project = expand, depthwise, project
        self.in_channels = (expand or depthwise).in_channels
        self.out_channels = project.out_channels
        self._impl = kernels.ConvChain(None if expand is None else expand._impl,
                                       depthwise._impl, project._impl)

    @staticmethod
    def pays(expands, channels, height, width, in_channels=0, out_channels=0):
        """Whether the chain beats its plans run one by one on this backend, for an
        expansion (`expands`) to `channels` channels of height x width, in a block from
        in_channels to out_channels (0: not known; small blocks pay as one parallel run)."""
        return bool(kernels.ConvChain.pays(bool(expands), int(channels), int(height),
                                           int(width), int(in_channels), int(out_channels)))

    def output_shape(self, input_shape):
        """The output shape for an input of shape (N, C, H, W)."""
        n, _, h, w = input_shape
        return (n, self.out_channels) + self.depthwise.output_shape((n, 1, h, w))[2:]

    def __call__(self, x, out=None):
        """x [N, in_channels, H, W], any real dtype and strides -> float32 [N,
        out_channels, OH, OW], written into `out` when given (float32, C-contiguous,
        exactly that shape)."""
        x = v.float32_array(x, "x", (4,), "4-D array (N, C, H, W)")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} channels, got shape {x.shape}")
        dw = self.depthwise
        geometry.check_fits(x.shape[2:], dw.kernel_size, dw.dilation, dw.padding, "x")
        shape = v.output_size(self.output_shape(x.shape), "x, stride, padding, dilation")
        if out is not None:
            out = v.output_buffer(out, shape)
        return self._impl(x, out)

    def __repr__(self):
        return f"ConvChain({self.expand!r}, {self.depthwise!r}, {self.project!r})"
