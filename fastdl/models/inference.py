"""How a model runs at inference: its Program (graph.py) compiled once into fewer, fused
steps with reused output buffers.

- A convolution or Dense layer followed by BatchNormalization (on its channel axis, the
  BN being the only reader of its output) runs as one plan with the statistics folded
  into its weights and bias; an Activation layer the kernels can fuse (relu, relu6,
  sigmoid, tanh, silu/swish, elu, leaky_relu, hard_swish) after either is fused into the
  plan's write-back. A Dense layer's own softmax / log_softmax runs on the kernel right
  after its plan.
- A ZeroPadding no convolution takes over writes into a buffer whose zero border is
  written once; later calls copy the interior only. Before a max pooling, over maps that
  are never negative (written by relu or relu6: ResNet's stem), the pooling pads instead
  (its -inf border picks what the zeros would).
- Layers that compute nothing at inference (Dropout and its kin, a bare InputLayer) are
  dropped: their readers take the input directly.
- Three fused convolutions forming a depthwise-separable block (pointwise expansion,
  depthwise, pointwise projection: MobileNetV2's inverted residuals) run as one
  ops.ConvChain, strip by strip, where that pays at the model's input size.
- Fused steps write into output buffers allocated once per input shape and reused by later
  calls; what a call returns is never such a buffer (a small model output written into
  one, _COPIED_OUTPUT_FLOATS, and one that would alias one are copied out).

- From the second call with inputs of a signature (shapes and layouts) on, a call runs
  that signature's trace: the steps as plain calls, each straight to its kernel with the
  buffers and conversions its first calls settled (a model's per-step bookkeeping was a
  third of a batch-1 call of the seed CIFAR CNN). A trace is dropped when any layer's
  weights change (`layers.base.weights_epoch`); its calls check their inputs and take the
  checked path on anything unexpected. Runs of steps on the model's buffers replay as one
  native call each (bound_trace.py).

Fused steps read their layers' weights through `Layer._version`, so set_weights on the
model or on any one layer reaches them. One call at a time uses the buffers; a concurrent
call (another thread) runs the unfused program instead of waiting.
"""
import functools
import threading
import time

import numpy as np

from fastdl._backend import kernels
from fastdl.layers import base as layer_base
from fastdl.layers import layout as L
from fastdl.layers.merging import Concatenate, _layout_key, _reduce
from fastdl.layers.pooling import _Global, _Pooling
from fastdl.models import bound_trace
from fastdl.models.graph import Program, Step


def compile_program(program):
    """The fused Program of `program` (a new object; `program` is unchanged)."""
    readers = {}
    for i, step in enumerate(program.steps):
        for s in _slots(step.inputs):
            readers.setdefault(s, []).append(i)
    outputs = set(program.output_slots)
    steps = list(program.steps)
    alias = {}  # slot -> the slot it equals (identity steps dropped)
    padded = {}  # conv step -> the zero padding it takes over
    done = set()
    fused_steps = []
    for i, step in enumerate(steps):
        if i in done:
            continue
        ins = _rename(step.inputs, alias)
        layer = step.layer
        if getattr(layer, "_identity_at_inference", False) and not isinstance(
                step.inputs, list):
            alias[step.outputs] = ins
            continue
        j = _only_reader(i, steps, readers, outputs)
        if j is not None and (_pads_into(layer, steps[j].layer) or _max_pool_pads(
                layer, steps[j].layer, ins, fused_steps)):
            padded[j] = layer.padding  # the conv or pooling pads; this copy is not made
            alias[step.outputs] = ins
            continue
        if _is_zero_padding(layer) and step.outputs not in outputs:
            fused_steps.append(Step(PaddingStep(layer), ins, step.outputs))
            continue
        shuffle = _channel_shuffle(i, steps, readers, outputs)
        if shuffle is not None:
            done.update(shuffle)
            step_out = steps[shuffle[-1]].outputs
            fused = ChannelShuffleStep(layer, *[steps[j].layer for j in shuffle])
            fused.reuse_output = step_out not in outputs
            fused_steps.append(Step(fused, ins, step_out))
            continue
        buffered = _buffered_step(layer)
        if buffered is not None:
            if i in padded:
                buffered.pads = tuple(a for a, _ in padded[i])
            buffered.reuse_output = step.outputs not in outputs
            fused_steps.append(Step(buffered, ins, step.outputs))
            continue
        chain = _chain(i, steps, readers, outputs)
        if chain is None:
            kind = _plan_step_kind(layer)
            if kind is None:
                fused_steps.append(Step(layer, ins, step.outputs))
                continue
            chain = kind, None, None  # alone: still reused buffers and the unchecked call
        kind, bn, act_step = chain
        last = act_step if act_step is not None else bn if bn is not None else i
        absorbed = [j for j in (bn, act_step) if j is not None]
        done.update(absorbed)
        fused = kind(layer, steps[bn].layer if bn is not None else None,
                     fusible_activation(steps[act_step].layer) if act_step is not None
                     else None, [steps[j].layer for j in absorbed])
        if i in padded:
            fused.pads = padded[i]
        out_slot = steps[last].outputs
        fused.reuse_output = out_slot not in outputs
        fused_steps.append(Step(fused, ins, out_slot))
    out_slots = [alias.get(s, s) for s in program.output_slots]
    fused_steps = _chain_blocks(fused_steps, set(out_slots))
    fused_steps = _concatenated_branches(fused_steps, set(out_slots))
    if bound_trace.available():
        for step in fused_steps:
            if isinstance(step.layer, _ReusedOutput) and not isinstance(step.outputs, list):
                step.layer.model_output = step.outputs in out_slots
    return Program(fused_steps, program.input_slots, out_slots, program.n_slots)


def _chain_blocks(steps, outputs):
    """`steps` with every run of three fused convolutions that forms a depthwise-separable
    block worth chaining (ConvChain.pays at the model's known input size) as one
    ConvChainStep."""
    readers = _reader_counts(steps)

    def feeds(a, b):  # a's output is b's input and read by nothing else
        return (not isinstance(a.outputs, list) and a.outputs not in outputs
                and b.inputs == a.outputs and readers.get(a.outputs) == 1)

    chained, i = [], 0
    while i < len(steps):
        run = steps[i:i + 3]
        if len(run) == 3 and feeds(run[0], run[1]) and feeds(run[1], run[2]) and _block_pays(
                [s.layer for s in run]):
            chain = ConvChainStep([s.layer for s in run])
            chain.reuse_output = run[2].layer.reuse_output
            for s in run:
                s.layer.reuse_output = False  # their outputs: the first call's only
            chained.append(Step(chain, run[0].inputs, run[2].outputs))
            i += 3
        else:
            chained.append(steps[i])
            i += 1
    return chained


def _concatenated_branches(steps, outputs):
    """`steps` with every Concatenate whose inputs are all fused convolutions of one input,
    read by nothing else (SqueezeNet's fire module), run with them as one
    ConcatenatedConvsStep at the Concatenate's place."""
    readers = _reader_counts(steps)
    producer = {step.outputs: i for i, step in enumerate(steps)
                if not isinstance(step.outputs, list)}
    merged, gone = {}, set()
    for i, step in enumerate(steps):
        if not isinstance(step.layer, ConcatStep) or not isinstance(step.inputs, list):
            continue
        branches = [producer.get(s) for s in step.inputs]
        if (len(set(step.inputs)) != len(step.inputs) or len(step.inputs) < 2
                or None in branches
                or any(readers.get(s) != 1 or s in outputs for s in step.inputs)):
            continue
        convs = [steps[j] for j in branches]
        if not all(type(c.layer) is FusedConv and not isinstance(c.inputs, list)
                   and c.inputs == convs[0].inputs for c in convs):
            continue
        fused = ConcatenatedConvsStep([c.layer for c in convs], step.layer.layer)
        fused.reuse_output = step.layer.reuse_output
        merged[i] = Step(fused, convs[0].inputs, step.outputs)
        gone.update(branches)
    return [merged.get(i, step) for i, step in enumerate(steps) if i not in gone]


def _reader_counts(steps):
    """slot -> how many of `steps` read it."""
    readers = {}
    for step in steps:
        for s in _slots(step.inputs):
            readers[s] = readers.get(s, 0) + 1
    return readers


def _pointwise_2d(conv):
    return (conv.rank == 2 and conv.kernel_size == (1, 1) and conv.strides == (1, 1)
            and conv.groups == 1)


def _block_pays(fused):
    """True where three fused steps are a pointwise expansion, a depthwise layer and a
    pointwise projection of one data_format whose chain pays at the model's input size."""
    from fastdl.ops import ConvChain
    if not all(type(f) is FusedConv for f in fused):
        return False
    expand, dw, project = (f.layer for f in fused)
    if fused[0].pads is not None or fused[2].pads is not None:
        return False
    if not (_pointwise_2d(expand) and _pointwise_2d(project) and dw.rank == 2
            and dw.groups == dw.filters == expand.filters
            and expand.data_format == dw.data_format == project.data_format):
        return False
    shape = getattr(expand, "input_shape", None)
    if shape is None or len(shape) != 4:
        return False
    spatial = shape[2:] if expand.data_format == "channels_first" else shape[1:3]
    if any(d is None for d in spatial):
        return False
    in_channels = shape[1] if expand.data_format == "channels_first" else shape[3]
    return ConvChain.pays(True, expand.filters, *spatial, in_channels, project.filters)


def _buffered_step(layer):
    """The step writing `layer`'s output into a reused buffer, if it has one."""
    if isinstance(layer, Concatenate):
        return ConcatStep(layer)
    if isinstance(layer, _Pooling):
        return PoolStep(layer)
    if isinstance(layer, _Global):
        return GlobalPoolStep(layer)
    if getattr(layer, "ufunc", None) is not None:  # Add, Subtract, Multiply, Maximum...
        return MergeStep(layer)
    return None


def _channel_shuffle(i, steps, readers, outputs):
    """[Reshape, Permute, Reshape step indices] where step i is a Concatenate whose output
    they shuffle, each the only reader of the one before: (C, *S) -> (g, C/g, *S) ->
    (C/g, g, *S) -> (C, *S), ShuffleNet's channel shuffle as exported to ONNX. Else None."""
    from fastdl.layers.core import Reshape
    from fastdl.layers.reshaping import Permute
    if not isinstance(steps[i].layer, Concatenate):
        return None
    found, at = [], i
    for kind in (Reshape, Permute, Reshape):
        at = _only_reader(at, steps, readers, outputs) if at is not None else None
        if at is None or type(steps[at].layer) is not kind:
            return None
        found.append(at)
    split, swap, merge = (steps[j].layer for j in found)
    groups = split.target_shape
    rank = len(groups) - 1
    if (len(merge.target_shape) != rank or -1 in groups or rank < 1
            or swap.dims != (2, 1) + tuple(range(3, rank + 2))
            or merge.target_shape != (groups[0] * groups[1],) + groups[2:]):
        return None
    return found


def _is_zero_padding(layer):
    from fastdl.layers.reshaping import _ZeroPadding
    return isinstance(layer, _ZeroPadding)


def _pads_into(layer, reader):
    """True where `layer` is a ZeroPadding the convolution `reader` can do itself (a
    'valid' convolution of the same rank and data_format, run as a plan step)."""
    from fastdl.layers.reshaping import _ZeroPadding
    return (isinstance(layer, _ZeroPadding) and _plan_step_kind(reader) is FusedConv
            and reader.padding == "valid" and reader.rank == layer.rank
            and reader.data_format == layer.data_format)


def _max_pool_pads(layer, reader, slot, fused_steps):
    """True where `layer` is a ZeroPadding that the max pooling `reader` (its only reader)
    can do itself with its kernels' -inf padding: the padded maps (`slot`) are written by
    a step ending in relu or relu6 (never negative, so a window's maximum is the same with
    the zeros or without them), the same amount on both sides of each axis and at most
    half the window, a 'valid' pooling of the same rank and data_format."""
    from fastdl.layers.reshaping import _ZeroPadding
    if not (isinstance(layer, _ZeroPadding) and isinstance(reader, _Pooling)
            and reader.kind == "max" and reader.padding == "valid"
            and reader.rank == layer.rank and reader.data_format == layer.data_format
            and all(a == b and a <= k // 2
                    for (a, b), k in zip(layer.padding, reader.pool_size))):
        return False
    for step in reversed(fused_steps):
        if step.outputs == slot:
            act = (step.layer.activation if isinstance(step.layer, _Fused)
                   else fusible_activation(step.layer))
            return act is not None and act.fused in ("relu", "relu6")
    return False


def _rename(slots, alias):
    if isinstance(slots, list):
        return [alias.get(s, s) for s in slots]
    return alias.get(slots, slots)


def _slots(slots):
    return slots if isinstance(slots, list) else [slots]


def _only_reader(step_index, steps, readers, outputs):
    """The index of the one step reading step_index's output, if that output is read by
    exactly one step and is not a model output; else None."""
    out = steps[step_index].outputs
    if isinstance(out, list) or out in outputs:
        return None
    r = readers.get(out, [])
    return r[0] if len(r) == 1 else None


def fusible_activation(layer):
    """The activations.Activation a plan's write-back can compute for this layer (an
    Activation layer, or one offering fusible_activation()), else None."""
    from fastdl.layers.core import Activation
    if type(layer) is Activation:
        return layer.activation if layer.activation.fused is not None else None
    offered = getattr(layer, "fusible_activation", None)
    return offered() if callable(offered) else None


def _plan_step_kind(layer):
    """FusedConv / FusedDense for a convolution or Dense layer whose activation its plan
    computes (or none), else None."""
    from fastdl.layers.conv import _Conv
    from fastdl.layers.core import Dense
    kind = FusedConv if isinstance(layer, _Conv) and layer._folds_into_plan else \
        FusedDense if isinstance(layer, Dense) else None
    if kind is None or (layer.activation.fused is None and layer.activation.name != "linear"
                        and not (kind is FusedDense and layer.activation.name in _SOFTMAX)):
        return None
    return kind


# A Dense layer's softmax / log_softmax (over its units) runs on the kernel straight after
# the plan: log is the kernel's flag.
_SOFTMAX = {"softmax": False, "log_softmax": True}


def _chain(i, steps, readers, outputs):
    """(fused step class, BN step index or None, Activation step index or None) for a
    conv/dense step i that can absorb what follows it; None if nothing can be fused."""
    from fastdl.layers.normalization import BatchNormalization
    layer = steps[i].layer
    kind = _plan_step_kind(layer)
    if kind is None or layer.activation.name != "linear":
        return None
    bn = act = None
    j = _only_reader(i, steps, readers, outputs)
    if j is not None and isinstance(steps[j].layer, BatchNormalization) and kind.folds(
            layer, steps[j].layer):
        bn = j
        j = _only_reader(j, steps, readers, outputs)
    if j is not None and fusible_activation(steps[j].layer) is not None:
        act = j
    if bn is None and act is None:
        return None
    return kind, bn, act


# A model output of at most this many floats is written into a reused buffer too (the
# runner copies it out: a few KB), so that its step binds with the steps before it instead
# of staying a Python call (a tenth of the seed CIFAR CNN's batch-1 call at 2 threads).
# Larger outputs go to a new array each call: the copy would cost more than the call. On
# a backend without bound calls no output is: the copy would buy nothing.
_COPIED_OUTPUT_FLOATS = 1 << 14


class Buffers:
    """The model's reused buffers (arrays its steps overwrite on every call), shared by its
    steps. It holds the arrays, not only their ids: a freed array's id comes back as a new
    array's, which would then pass for a buffer (bound to memory the next call no longer
    reads, or copied out needlessly). A buffer the arena replaces is dropped."""

    def __init__(self):
        self._arrays = {}  # id -> array

    def add(self, a):
        self._arrays[id(a)] = a

    def discard(self, a):
        self._arrays.pop(id(a), None)

    def holds(self, a):
        """Whether a's memory is a buffer's (a is one, or a view of one)."""
        return type(a) is np.ndarray and id(a if a.base is None else a.base) in self._arrays


class _ReusedOutput:
    """A step writing its output into a buffer per output shape, kept across calls (and
    placed in the model's arena by InferenceRunner._share_buffers) unless `reuse_output`
    is off (the step's output is a model output: reused only up to _COPIED_OUTPUT_FLOATS,
    where `model_output` is on)."""

    def _init_output(self):
        self.reuse_output = False
        self.model_output = False
        self.buffers = Buffers()  # the reused buffers (the model's, once it runs the step)
        self._buffers = {}       # output shape -> output array

    def _out(self, shape):
        """The buffer for an output of `shape`, or None (a new array each call)."""
        if not self.reuse_output and not (
                self.model_output and int(np.prod(shape)) <= _COPIED_OUTPUT_FLOATS):
            self.last_out_shape = None
            return None
        self.last_out_shape = shape
        out = self._buffers.get(shape)
        if out is None:
            out = self._buffers[shape] = np.empty(shape, np.float32)
            self.buffers.add(out)
        return out

    def _is_buffer(self, y):
        """Whether y is this step's reused buffer (the step's calls write there)."""
        return y is self._buffers.get(y.shape)

    def _buffers_moved(self):
        """Called once the arena has replaced the buffers in _buffers."""


class _Fused(_ReusedOutput):
    """A layer-like step: `layer` (conv or dense) with `bn` folded in and `activation`
    fused (either may be None), its plans rebuilt or repacked when any source layer's
    weights change."""

    def __init__(self, layer, bn, activation, absorbed):
        self.layer, self.bn = layer, bn
        self.activation = activation if activation is not None else layer.activation
        self.sources = [layer] + absorbed
        self.name = "+".join(l.name for l in self.sources)
        self._init_output()
        self._plans = {}     # key -> [plan, versions]
        self._checked = set()  # (plan id, input shape) the plan has validated once
        # (input shape, layout) -> (versions, plan, out buffer, output layout, convert):
        # inputs validated once; the next calls go straight to the kernel, through
        # convert(x, layout)[0] where the plan took a converted copy (the layer's _maps).
        self._direct = {}

    def _forward(self, x, layout):
        direct = self._direct.get((x.shape, layout))
        if (direct is not None and type(x) is np.ndarray and x.dtype == np.float32
                and x.flags.c_contiguous and direct[0] == self._versions()):
            convert = direct[4]
            taken = x if convert is None else convert(x, layout)[0]
            return self._finish(direct[1]._impl(taken, direct[2])), direct[3]
        return self._checked_forward(x, layout)

    def _remember(self, x, layout, taken, plan, out, out_layout, convert=None):
        """Lets later calls with inputs like x skip to the kernel: where the plan took x
        itself (`taken` is x) or convert(x, layout)[0] (a model's channels_last input)."""
        if (taken is x or convert is not None) and len(self._direct) < 16:
            self._direct[(x.shape, layout)] = (self._versions(), plan, out, out_layout,
                                               None if taken is x else convert)

    def _fast_forward(self, x, layout):
        """The step as a plain call for inputs like x (InferenceRunner's traces), or None.
        The call checks its input (falling back to the checked path), not the weights."""
        direct = self._direct.get((x.shape, layout)) if type(x) is np.ndarray else None
        if direct is None:
            return None
        _, plan, out, _, convert = direct
        impl, shape, f32 = plan._impl, x.shape, np.float32
        finish = self._finish if self._finishes() else None
        forward = self._forward

        def call(a):
            if type(a) is not np.ndarray or a.shape != shape or a.dtype != f32 or not (
                    a.flags.c_contiguous):
                return forward(a, layout)[0]
            y = impl(a if convert is None else convert(a, layout)[0], out)
            return y if finish is None else finish(y)
        return call

    def _finish(self, y):
        """What follows the plan's own write-back (identity here)."""
        return y

    def _finishes(self):
        """Whether _finish does anything."""
        return False

    def _bind(self, x, layout, y):
        """[the plan's call bound to x and y, then _finish's] where the step's next calls
        with such inputs run that plan from x itself into the buffer y (bound_trace), else
        None."""
        direct = self._direct.get((x.shape, layout))
        if direct is None or direct[4] is not None or direct[2] is not y:
            return None
        calls, finish = bound_trace.bind_call(direct[1]._impl, x, y), self._bound_finish(y)
        return None if calls is None or finish is None else calls + finish

    def _bound_finish(self, y):
        """_finish on the buffer y as bound calls ([]: nothing to do), or None where it
        does not bind."""
        return None if self._finishes() else []

    def _versions(self):
        # A layer has a _version once its weights changed (Layer._weights_changed).
        return [l.__dict__.get("_version", 0) for l in self.sources]

    def _folded(self, weight, bias):
        """weight [out, ...] and bias [out] (or None) with the BN folded in."""
        if self.bn is None:
            return weight, bias
        scale, shift = self.bn.affine()
        scale64 = scale.astype(np.float64)
        w = weight.astype(np.float64) * scale64.reshape((-1,) + (1,) * (weight.ndim - 1))
        b = shift.astype(np.float64) + (0.0 if bias is None else bias * scale64)
        return w.astype(np.float32), b.astype(np.float32)

    def _plan(self, key, make, weights):
        entry = self._plans.get(key)
        versions = self._versions()
        if entry is None:
            entry = self._plans[key] = [make(*weights()), versions]
        elif entry[1] != versions:
            entry[0].set_weights(*weights())
            entry[1] = versions
        return entry[0]

    def _call(self, plan, x, out):
        """plan(x, out=out), validated the first time per plan and input shape; later the
        packed kernel alone (model-internal inputs: float32, C-contiguous)."""
        key = (id(plan), x.shape)
        if key in self._checked and x.flags.c_contiguous and x.dtype == np.float32:
            return plan._impl(x, out)
        y = plan(x, out=out)
        self._checked.add(key)
        return y

    def _buffers_moved(self):
        self._direct.clear()  # it holds the old buffers

    def __repr__(self):
        return f"<fused {self.name}>"


class FusedConv(_Fused):
    pads = None  # ((before, after), ...) of a ZeroPadding taken over, else the layer's

    def __init__(self, *args):
        super().__init__(*args)
        self._staging = {}  # model input shape -> its channels-first copy (_bind_input)

    def _bind_input(self, index, x, layout, y):
        """Where this step converts model input `index` (channels_last, in Keras' shape) to
        channels-first for its plan: [that conversion, bound as a copy into a staging
        buffer of this step's, and the plan's call from there into the buffer y]
        (bound_trace); else None."""
        direct = self._direct.get((x.shape, layout))
        bind_input = getattr(kernels, "bind_input_copy", None)
        if (bind_input is None or direct is None or direct[4] is None or direct[2] is not y
                or layout != L.KERAS or self.layer.data_format != "channels_last"):
            return None
        staging = self._staging.get(x.shape)
        if staging is None:
            staging = self._staging[x.shape] = np.empty(L.cf_shape(x.shape), np.float32)
        plan_call = bound_trace.bind_call(direct[1]._impl, staging, y)
        if plan_call is None:
            return None
        return [bind_input(index, L.keras_view(staging))] + plan_call

    @staticmethod
    def folds(conv, bn):
        """True where bn normalizes the conv's channel axis."""
        rank = conv.rank + 2
        axis = bn.axis % rank
        return axis == (rank - 1 if conv.data_format == "channels_last" else 1)

    def plan_for(self, spatial):
        """The plan for inputs of these spatial sizes: built on first use, repacked where
        the weights changed since."""
        conv = self.layer
        return self._plan(conv._plan_key(spatial),
                          lambda w, b: conv._new_plan(spatial, w, b, self.activation,
                                                      self.pads),
                          lambda: self._folded(conv._torch_weight(), conv._bias()))

    def _checked_forward(self, x, layout):
        taken, out_layout = self.layer._maps(x, layout)
        plan = self.plan_for(taken.shape[2:])
        out = self._out(plan.output_shape(taken.shape))
        y = self._call(plan, taken, out)
        self._remember(x, layout, taken, plan, out, out_layout, self.layer._maps)
        return y, out_layout


class FusedDense(_Fused):
    @staticmethod
    def folds(dense, bn):
        rank = len(bn.input_shape)
        return bn.axis % rank == rank - 1

    def _checked_forward(self, x, layout):
        dense = self.layer
        taken, key = dense._rows(x, layout)
        def folded():  # the BN folds per output unit: a row of [units, in]
            w, b = self._folded(dense._kernel_for(key).T, dense._bias())
            return w.T, b

        plan = self._plan(key, lambda w, b: dense._new_plan(w, b, self.activation), folded)
        out = self._out(taken.shape[:-1] + (dense.units,))
        if taken.ndim == 2:
            y = self._call(plan, taken, out)
            self._remember(x, layout, taken, plan, out, L.KERAS)
        else:
            y = plan(taken, out=out)
        return self._finish(y), L.KERAS

    def _finishes(self):
        return self.activation.name in _SOFTMAX

    def _finish(self, y):
        log = _SOFTMAX.get(self.activation.name)
        if log is None:
            return y
        units = self.layer.units
        out = kernels.softmax(y.reshape(y.size // units, units, 1), 1.0, log).reshape(y.shape)
        if not self._is_buffer(y) or not bound_trace.available():
            return out
        np.copyto(y, out)  # the result stays in the buffer, where the bound form writes it
        return y

    def _bound_finish(self, y):
        """The softmax in place on y, bound."""
        log = _SOFTMAX.get(self.activation.name)
        if log is None:
            return []
        bind_softmax = getattr(kernels, "bind_softmax", None)
        if bind_softmax is None:
            return None
        rows = y.reshape(y.size // self.layer.units, self.layer.units, 1)
        return [bind_softmax(rows, rows, 1.0, log)]


class _Chained:
    """What a ConvChainStep keeps per input shape and layout: the chain (None where the
    plans refused one), the versions of the weights it was built with, its plans and their
    inputs' spatial sizes, the output's shape and layout."""
    __slots__ = ("chain", "versions", "plans", "sizes", "out_shape", "out_layout")

    def __init__(self, chain, versions, plans, sizes, out_shape, out_layout):
        self.chain, self.versions, self.plans = chain, versions, plans
        self.sizes, self.out_shape, self.out_layout = sizes, out_shape, out_layout


class ConvChainStep(_ReusedOutput):
    """Three fused convolution steps forming a depthwise-separable block (a pointwise
    expansion, a depthwise layer, a pointwise projection) run as one ops.ConvChain: strip by
    strip, the expanded tensor staying in cache (fastdl/ops/conv_chain.py). The first call
    per input shape runs the steps one by one (validating the input, building their
    plans) and chains their plans for the next calls; a chain the plans refuse (a
    depthwise padding as tall as its window) leaves the steps one by one, into buffers of
    their own (the last one's only where this step's output may be reused)."""

    def __init__(self, steps):
        self.steps = steps
        self.name = "+".join(s.name for s in steps)
        self._init_output()
        self._chains = {}  # (input shape, layout) -> _Chained

    def _versions(self):
        return [v for s in self.steps for v in s._versions()]

    def _forward(self, x, layout):
        entry = self._chains.get((x.shape, layout))
        if entry is None:
            return self._first_forward(x, layout)
        if entry.chain is None:
            return self._one_by_one(x, layout)
        taken, _ = self.steps[0].layer._maps(x, layout)
        if type(taken) is not np.ndarray or taken.dtype != np.float32 or not (
                taken.flags.c_contiguous):
            return self._one_by_one(x, layout)
        if entry.versions != self._versions():
            self._refresh(entry)
        return entry.chain._impl(taken, self._out(entry.out_shape)), entry.out_layout

    def _one_by_one(self, x, layout):
        y, lay = x, layout
        for step in self.steps:
            y, lay = step._forward(y, lay)
        return y, lay

    def _first_forward(self, x, layout):
        from fastdl.ops import ConvChain
        y, lay, sizes = x, layout, []
        for step in self.steps:
            sizes.append(step.layer._maps(y, lay)[0].shape[2:])
            y, lay = step._forward(y, lay)
        plans = [s.plan_for(size) for s, size in zip(self.steps, sizes)]
        try:
            chain = ConvChain(*plans)
        except ValueError:
            chain = None
            for step in self.steps:  # from now on they run as fused steps do
                step.buffers = self.buffers
                step.reuse_output = step is not self.steps[-1] or self.reuse_output
                step.model_output = step is self.steps[-1] and self.model_output
                step._buffers_moved()  # their remembered calls wrote new arrays
        if len(self._chains) < 16:
            self._chains[(x.shape, layout)] = _Chained(chain, self._versions(), plans, sizes,
                                                       y.shape, lay)
        out = self._out(y.shape) if chain is not None else None
        if out is None:
            return y, lay
        np.copyto(out, y)
        return out, lay

    def _fast_forward(self, x, layout):
        """The step as a plain call for inputs like x (InferenceRunner's traces), or None.
        The call checks its input (falling back to _forward), not the weights."""
        entry = self._chains.get((x.shape, layout)) if type(x) is np.ndarray else None
        if entry is None or entry.chain is None:
            return None
        impl, out, maps = entry.chain._impl, self._out(entry.out_shape), self.steps[0].layer._maps
        shape, f32, forward = x.shape, np.float32, self._forward

        def call(a):
            if type(a) is np.ndarray and a.shape == shape:
                taken = maps(a, layout)[0]
                if taken.dtype == f32 and taken.flags.c_contiguous:
                    return impl(taken, out)
            return forward(a, layout)[0]
        return call

    def _bind(self, x, layout, y):
        """[the chain's call bound to x and y] where later calls run it from x itself into
        the buffer y (bound_trace), else None."""
        entry = self._chains.get((x.shape, layout))
        if (entry is None or entry.chain is None or not self._is_buffer(y)
                or self.steps[0].layer._maps(x, layout)[0] is not x):
            return None
        return bound_trace.bind_call(entry.chain._impl, x, y)

    def _refresh(self, entry):
        """After a weight change: the steps repack their plans in place (a rebuilt plan
        rebuilds the chain)."""
        from fastdl.ops import ConvChain
        plans = [s.plan_for(size) for s, size in zip(self.steps, entry.sizes)]
        if any(p is not q for p, q in zip(plans, entry.plans)):
            entry.chain, entry.plans = ConvChain(*plans), plans
        entry.versions = self._versions()

    def __repr__(self):
        return f"<chained {self.name}>"


class _LayerStep(_ReusedOutput):
    """One layer run by the compiled program into its reused output buffer."""

    def __init__(self, layer):
        self.layer, self.name = layer, layer.name
        self._init_output()


class PoolStep(_LayerStep):
    """A pooling layer writing into a reused output buffer where its kernels pad (a
    PoolPlan); inputs the layer pads itself run the layer. With `pads`, a max pooling
    that also pads its (never negative) input by these amounts per axis, both sides: a
    ZeroPadding taken over."""

    pads = None

    def __init__(self, layer):
        super().__init__(layer)
        self._padded_plans = {}  # input shape -> PoolPlan padding by `pads`

    def _plan(self, shape, build=True):
        """The PoolPlan for channels-first inputs of `shape` (False: the layer pads; None:
        not built and not `build`)."""
        if self.pads is None:
            return self.layer._plan_for(shape) if build else self.layer._plans.get(shape)
        plan = self._padded_plans.get(shape)
        if plan is None and build:
            plan = self._padded_plans[shape] = self.layer._kernel_plan(shape, self.pads)
        return plan

    def _forward(self, x, layout):
        taken, out_layout = L.maps(x, layout, self.layer.data_format)
        plan = self._plan(taken.shape)
        if plan is False:
            return self.layer._forward(x, layout)
        return plan(taken, self._out(plan.output_shape)), out_layout

    def _fast_forward(self, x, layout):
        """The step as a plain call for inputs like x (InferenceRunner's traces), or None."""
        taken, _ = L.maps(x, layout, self.layer.data_format)
        plan = self._plan(taken.shape, build=False)
        if not plan or taken is not x:
            return None
        out = self._out(plan.output_shape)
        return plan if out is None else plan.into(out)

    def _bind(self, x, layout, y):
        """[the pooling bound to x and y] where later calls pool x itself into the buffer
        y (bound_trace), else None."""
        if L.maps(x, layout, self.layer.data_format)[0] is not x or not self._is_buffer(y):
            return None
        plan = self._plan(x.shape, build=False)
        return bound_trace.bind_call(plan, x, y) if plan else None

    def __repr__(self):
        return f"<pooling {self.name}>"


class GlobalPoolStep(_LayerStep):
    """A global pooling layer writing into a reused output buffer: each plane's mean or
    maximum as a PoolPlan over the planes as rows (one window per row), per input shape."""

    def __init__(self, layer):
        super().__init__(layer)
        self._rows_plans = {}  # rows' shape (N, C, plane) -> PoolPlan

    def _pooled(self, x, layout):
        """(rows of the channels-first maps, their plan, the output's shape and layout),
        or None where the layer's own path runs (an input a plan does not take as is)."""
        maps, map_layout = L.maps(x, layout, self.layer.data_format)
        if not (type(maps) is np.ndarray and maps.dtype == np.float32
                and maps.flags.c_contiguous and maps.ndim == self.layer.rank + 2
                and maps.size):
            return None
        n, c = maps.shape[:2]
        rows = maps.reshape(n, c, -1)
        plan = self._rows_plans.get(rows.shape)
        if plan is None:
            from fastdl.ops import PoolPlan
            plan = PoolPlan(self.layer.kind, rows.shape, (rows.shape[2],), 1)
            if len(self._rows_plans) < 16:
                self._rows_plans[rows.shape] = plan
        if self.layer.keepdims:
            return rows, plan, maps.shape[:2] + (1,) * self.layer.rank, map_layout
        return rows, plan, (n, c), L.KERAS

    def _forward(self, x, layout):
        pooled = self._pooled(x, layout)
        if pooled is None:
            return self.layer._forward(x, layout)
        rows, plan, shape, out_layout = pooled
        out = self._out(shape)
        if out is None:
            return plan(rows).reshape(shape), out_layout
        plan(rows, out.reshape(plan.output_shape))
        return out, out_layout

    def _bind(self, x, layout, y):
        """[the pooling bound to x's rows and the buffer y] where later calls pool x
        itself into y (bound_trace), else None."""
        pooled = self._pooled(x, layout)
        if pooled is None or not self._is_buffer(y) or not np.may_share_memory(pooled[0], x):
            return None
        rows, plan, _, _ = pooled
        return bound_trace.bind_call(plan, rows, y.reshape(plan.output_shape))

    def __repr__(self):
        return f"<global pooling {self.name}>"


class ConcatStep(_LayerStep):
    """A Concatenate layer writing into a reused output buffer: a large concatenation
    (SqueezeNet's fire modules) otherwise takes fresh pages from the OS on every call."""

    def _forward(self, x, layout):
        xs, axis, out_layout = self.layer._operands(x, layout)
        shape = list(xs[0].shape)
        shape[axis] = sum(a.shape[axis] for a in xs)
        out = self._out(tuple(shape))
        if out is None:
            return np.concatenate(xs, axis=axis), out_layout
        np.concatenate(xs, axis=axis, out=out)
        return out, out_layout

    def _bind(self, x, layout, y):
        """The inputs' copies into their parts of the buffer y where later calls write
        them there (bound_trace), else None."""
        bind_copy = getattr(kernels, "bind_copy", None)
        if bind_copy is None or not self._is_buffer(y):
            return None
        xs, axis, _ = self.layer._operands(x, layout)
        if any(a is not b for a, b in zip(xs, x)):
            return None
        calls, at = [], 0
        for a in xs:
            part = [slice(None)] * y.ndim
            part[axis] = slice(at, at + a.shape[axis])
            calls.append(bind_copy(a, y[tuple(part)]))
            at += a.shape[axis]
        return calls

    def __repr__(self):
        return f"<concatenate {self.name}>"


class ConcatenatedConvsStep(_ReusedOutput):
    """Convolutions of one input concatenated along their channels (_concatenated_branches):
    at batch 1 each plan writes straight into its channels of the reused output, no copy;
    larger batches (whose channel slices are not contiguous) and anything else run the
    convolutions and the Concatenate as they are."""

    def __init__(self, convs, concat):
        self.convs, self.concat = convs, concat
        self.name = "+".join([c.name for c in convs] + [concat.name])
        self._init_output()
        # (input shape, layout) -> (the convs' versions, [(kernel, input convert or None,
        # its channels of the output)], the output): the batch-1 calls _fast_forward makes
        self._direct = {}

    def _forward(self, x, layout):
        if isinstance(x, np.ndarray) and x.shape[0] == 1:
            parts = self._parts(x, layout)
            if parts is not None:
                return parts
        ys, lays = zip(*[c._forward(x, layout) for c in self.convs])
        return self.concat._forward(list(ys), list(lays))

    def _parts(self, x, layout):
        """The batch-1 path: (output, its layout), or None where it does not apply."""
        taken, plans, out_layout = [], [], None
        for conv in self.convs:
            t, lay = conv.layer._maps(x, layout)
            if out_layout not in (None, lay):
                return None
            taken.append(t)
            plans.append(conv.plan_for(t.shape[2:]))
            out_layout = lay
        shapes = [p.output_shape(t.shape) for p, t in zip(plans, taken)]
        rank = len(shapes[0])
        axis = self.concat._axis(rank)
        channels_axis = rank - 1 if out_layout == L.CF else 1  # in Keras' shape
        if axis != channels_axis or len({s[2:] for s in shapes}) != 1:
            return None
        total = sum(s[1] for s in shapes)
        out = self._out((1, total) + shapes[0][2:])
        if out is None:
            out = np.empty((1, total) + shapes[0][2:], np.float32)
        c, direct = 0, []
        for conv, plan, t, shape in zip(self.convs, plans, taken, shapes):
            view = out[:, c:c + shape[1]]
            conv._call(plan, t, view)
            direct.append((plan._impl, None if t is x else conv.layer._maps, view))
            c += shape[1]
        if self.reuse_output and len(self._direct) < 16:
            self._direct[(x.shape, layout)] = (self._versions(), direct, out)
        return out, out_layout

    def _versions(self):
        return [c._versions() for c in self.convs]

    def _fast_forward(self, x, layout):
        """The batch-1 plain call for inputs like x (InferenceRunner's traces), or None."""
        entry = self._direct.get((x.shape, layout)) if type(x) is np.ndarray else None
        if entry is None or entry[0] != self._versions():
            return None
        _, direct, out = entry
        shape, f32, forward = x.shape, np.float32, self._forward

        def call(a):
            if type(a) is not np.ndarray or a.shape != shape or a.dtype != f32 or not (
                    a.flags.c_contiguous):
                return forward(a, layout)[0]
            for impl, convert, view in direct:
                impl(a if convert is None else convert(a, layout)[0], view)
            return out
        return call

    def _bind(self, x, layout, y):
        """The convolutions' calls bound to x and their channels of the buffer y where
        later calls run them so (bound_trace), else None."""
        entry = self._direct.get((x.shape, layout))
        if entry is None or entry[2] is not y:
            return None
        calls = []
        for impl, convert, view in entry[1]:
            call = None if convert is not None else bound_trace.bind_call(impl, x, view)
            if call is None:
                return None
            calls += call
        return calls

    def _buffers_moved(self):
        self._direct.clear()  # it holds views of the old buffers

    def __repr__(self):
        return f"<concatenated convolutions {self.name}>"


class ChannelShuffleStep(_LayerStep):
    """A Concatenate along the channels whose output a Reshape, Permute, Reshape shuffle
    (_channel_shuffle): the inputs copied straight to their shuffled places in one reused
    buffer, out[:, j * g + i] = concatenated[:, i * C/g + j] -- one copy instead of a
    concatenation, a transpose and two reshape steps. Anything else (another layout or
    shape than the layers were matched for) runs the four layers."""

    def __init__(self, concat, split, swap, merge):
        super().__init__(concat)
        self.groups = split.target_shape[0]
        self.shape = merge.target_shape  # (C, *S) the concatenation must have
        self.layers = (split, swap, merge)

    def _forward(self, x, layout):
        xs, axis, out_layout = self.layer._operands(x, layout)
        first = xs[0]
        shape = (first.shape[0],) + self.shape
        if (out_layout != L.KERAS or axis != 1 or first.shape[2:] != self.shape[1:]
                or sum(a.shape[1] for a in xs) != self.shape[0]):
            y, lay = np.concatenate(xs, axis=axis), out_layout
            for layer in self.layers:
                y, lay = layer._forward(y, lay)
            return y, lay
        out = self._out(shape)
        if out is None:
            out = np.empty(shape, np.float32)
        for dst, src in self._copies(xs, out):
            np.copyto(dst, src)
        return out, L.KERAS

    def _copies(self, xs, out):
        """(destination, source) views: each input's channels to their shuffled places."""
        width = self.shape[0] // self.groups  # channels per group
        places = out.reshape((out.shape[0], width, self.groups) + self.shape[1:])
        c = 0  # channel of the concatenation
        for a in xs:
            end, taken = c + a.shape[1], 0
            while c < end:  # the part of `a` in group c // width
                group, j = divmod(c, width)
                n = min(width - j, end - c)
                yield places[:, j:j + n, group], a[:, taken:taken + n]
                c, taken = c + n, taken + n

    def _bind(self, x, layout, y):
        """The copies bound to the inputs and the buffer y where later calls make them so
        (bound_trace), else None."""
        bind_copy = getattr(kernels, "bind_copy", None)
        if bind_copy is None or not self._is_buffer(y):
            return None
        xs, axis, out_layout = self.layer._operands(x, layout)
        if out_layout != L.KERAS or any(a is not b for a, b in zip(xs, x)):
            return None
        return [bind_copy(src, dst) for dst, src in self._copies(xs, y)]

    def __repr__(self):
        return f"<channel shuffle {self.name}>"


class MergeStep(_LayerStep):
    """An elementwise merge (the layer's `ufunc` folded over its inputs: Add, Subtract,
    Multiply, Maximum, Minimum) writing into a reused buffer where its inputs share shape
    and layout (a residual connection); otherwise the layer itself (broadcasting)."""

    def _forward(self, x, layout):
        first = x[0]
        same = len(x) >= 2 and all(
            type(a) is np.ndarray and a.shape == first.shape and a.dtype == np.float32
            for a in x) and len({_layout_key(l) for l in layout}) == 1
        out = self._out(first.shape) if same else None
        if out is None:
            return self.layer._forward(x, layout)
        return _reduce(self.layer.ufunc, x, out=out), layout[0]

    def _bind(self, x, layout, y):
        """[the sum bound to the inputs and the buffer y] for an Add whose later calls
        write it there (bound_trace), else None."""
        bind_add = getattr(kernels, "bind_add", None)
        if (bind_add is None or self.layer.ufunc is not np.add or not self._is_buffer(y)
                or not all(a.flags.c_contiguous for a in x)):
            return None
        return [bind_add(list(x), y)]

    def __repr__(self):
        return f"<merge {self.name}>"


class PaddingStep:
    """A ZeroPadding layer writing into an output buffer per input shape whose border is
    zeroed once: later calls copy the interior only (no zero fill, no fresh pages)."""

    def __init__(self, layer):
        self.layer, self.name = layer, layer.name
        self.buffers = Buffers()  # shared with the model's other reused buffers
        self._buffers = {}       # input shape -> (output array, its interior view)

    def _forward(self, x, layout):
        taken, out_layout = L.maps(x, layout, self.layer.data_format)
        entry = self._buffers.get(taken.shape)
        if entry is None:
            out = self.layer._apply(taken)
            interior = out[(slice(None), slice(None)) + tuple(
                slice(a, a + s) for s, (a, _) in zip(taken.shape[2:], self.layer.padding))]
            self._buffers[taken.shape] = out, interior
            self.buffers.add(out)
            return out, out_layout
        out, interior = entry
        np.copyto(interior, taken)
        return out, out_layout

    def __repr__(self):
        return f"<padding {self.name}>"


class _Trace:
    """The compiled steps for inputs of one signature (shapes and layouts) as plain calls
    (each step's _fast_forward, else its _forward with the layouts that signature gives):
    what a call costs once the steps have validated such inputs, without their per-call
    bookkeeping. Valid while no layer's weights change (`epoch`)."""
    __slots__ = ("epoch", "ops", "n_slots", "input_slots", "output_slots", "out_layouts",
                 "chain")

    def finish(self):
        """Where every step reads the one before it (a Sequential model): `chain`, the
        calls alone, run one after the other without slots."""
        self.chain = None
        slot = self.input_slots[0] if len(self.input_slots) == 1 else None
        for call, ins, outs, several_in, several_out, _ in self.ops:
            if several_in or several_out or ins != slot:
                return
            slot = outs
        if list(self.output_slots) == [slot]:
            self.chain = tuple(op[0] for op in self.ops)

    def run(self, xs):
        if self.chain is not None:
            y = xs[0]
            for call in self.chain:
                y = call(y)
            return [y]
        values = [None] * self.n_slots
        for s, x in zip(self.input_slots, xs):
            values[s] = x
        for call, ins, outs, several_in, several_out, free in self.ops:
            y = call([values[s] for s in ins] if several_in else values[ins])
            if several_out:
                for s, a in zip(outs, y):
                    values[s] = a
            else:
                values[outs] = y
            for s in free:
                values[s] = None
        return [values[s] for s in self.output_slots]


def _traced_run(program, xs, layouts, buffers):
    """Runs `program` (Program.run); returns its outputs, their layouts and the _Trace of
    this call, its runs of steps on the model's `buffers` bound to them
    (bound_trace)."""
    trace = _Trace()
    trace.epoch = layer_base.weights_epoch
    trace.n_slots, trace.input_slots = program.n_slots, program.input_slots
    trace.output_slots, trace.ops = program.output_slots, []
    bound, outputs, fixed = [], [], buffers.holds

    def record(i, x, lay, y):  # after step i ran on x: its caches now hold x's shape
        step = program.steps[i]
        several_in, several_out = isinstance(step.inputs, list), isinstance(step.outputs, list)
        fast = getattr(step.layer, "_fast_forward", None)
        call = fast(x, lay) if fast is not None and not several_in else None
        if call is None:
            call = functools.partial(_forward_of, step.layer._forward, lay)
        trace.ops.append((call, step.inputs, step.outputs, several_in, several_out,
                          tuple(program.free_after[i])))
        index = (program.input_slots.index(step.inputs) if not several_in
                 and step.inputs in program.input_slots else None)
        bound.append(bound_trace.bound_calls(step.layer, x, lay, y, fixed, index))
        outputs.append(y)

    ys, trace.out_layouts = program.run(xs, layouts, record)
    trace.ops = bound_trace.with_bound_runs(trace.ops, bound, outputs, trace.input_slots,
                                            trace.output_slots)
    trace.finish()
    return ys, trace.out_layouts, trace


def _forward_of(forward, layout, x):
    return forward(x, layout)[0]


class InferenceRunner:
    """A Program and its compiled form; run() uses the compiled one (one caller at a
    time) and guarantees outputs that alias no reused buffer. From the second call with
    inputs of a signature on (once their buffers are placed), a call runs that
    signature's _Trace while no weight changed."""

    def __init__(self, program):
        self.program = program
        self.compiled = compile_program(program)
        self._lock = threading.Lock()
        self.checked_sizes = set()  # input sizes (without the batch) the layers accepted
        self._buffers = Buffers()
        self._arenas = {}  # input shapes -> the arena the fused steps' outputs share
        self._traces = {}  # (input shapes, layouts) -> _Trace
        for step in self.compiled.steps:
            if isinstance(step.layer, (_ReusedOutput, PaddingStep)):
                step.layer.buffers = self._buffers

    def _share_buffers(self):
        """After a run with new input shapes: the fused steps' output buffers for those
        shapes become views into one arena, placed by liveness (a buffer's bytes serve
        another step once no later step reads them), so a call writes a working set the
        size of its widest moment instead of every layer's output. A step that is not
        fused may return a view of its input (Reshape, Flatten): its outputs keep that
        input's buffer alive. Returns the arena (None if no step reuses a buffer)."""
        steps = self.compiled.steps
        slots = lambda s: s if isinstance(s, list) else [s]  # noqa: E731
        last = {}  # slot -> the last step reading it (len(steps): an output)
        for i, step in enumerate(steps):
            for s in slots(step.inputs):
                last[s] = i
        for s in self.compiled.output_slots:
            last[s] = len(steps)
        # A slot's buffer lives until the last reader of it or of any view of it.
        until = {}
        for i in range(len(steps) - 1, -1, -1):
            step = steps[i]
            outs = slots(step.outputs)
            end = max([last.get(s, i) for s in outs] + [until.get(s, i) for s in outs])
            for s in outs:
                until[s] = max(until.get(s, i), end)
            if not isinstance(step.layer, (_ReusedOutput, PaddingStep)):  # may return a view
                for s in slots(step.inputs):
                    until[s] = max(until.get(s, last.get(s, i)), end)
        wanted = []  # (start, end, nbytes, step's layer, output shape)
        for i, step in enumerate(steps):
            layer = step.layer
            if isinstance(layer, _ReusedOutput) and (
                    layer.reuse_output or layer.model_output) and getattr(
                    layer, "last_out_shape", None) is not None:
                shape = layer.last_out_shape
                nbytes = -(-int(np.prod(shape)) * 4 // 64) * 64  # 64-byte aligned
                wanted.append((i, until.get(step.outputs, i), nbytes, layer, shape))
        if not wanted:
            return None
        placed = []  # (start, end, offset, nbytes)
        offsets = []
        for start, end, nbytes, _, _ in wanted:
            busy = sorted((o, o + n) for s, e, o, n in placed if not (e < start or s > end))
            offset = 0
            for lo, hi in busy:
                if offset + nbytes <= lo:
                    break
                offset = max(offset, hi)
            placed.append((start, end, offset, nbytes))
            offsets.append(offset)
        arena = np.empty(max(o + n for _, _, o, n in placed) // 4, np.float32)
        self._buffers.add(arena)
        for (start, end, nbytes, layer, shape), offset in zip(wanted, offsets):
            view = arena[offset // 4: offset // 4 + int(np.prod(shape))].reshape(shape)
            self._buffers.discard(layer._buffers.get(shape))
            layer._buffers[shape] = view
            layer._buffers_moved()
        return arena

    def run(self, xs, layouts):
        if not self._lock.acquire(blocking=False):
            return self.program.run(xs, layouts)
        try:
            plain = all([type(x) is np.ndarray for x in xs])
            shapes = tuple([x.shape for x in xs] if plain else [np.shape(x) for x in xs])
            key = (shapes, tuple(layouts))
            trace = self._traces.get(key) if plain else None
            if trace is not None and trace.epoch == layer_base.weights_epoch:
                ys, lays = trace.run(xs), trace.out_layouts
            elif shapes in self._arenas and (key in self._traces or len(self._traces) < 8):
                # Buffers placed: this call's steps are the ones later calls repeat.
                ys, lays, self._traces[key] = _traced_run(self.compiled, xs, layouts,
                                                          self._buffers)
            else:
                ys, lays = self.compiled.run(xs, layouts)
                if shapes not in self._arenas and len(self._arenas) < 8:
                    self._arenas[shapes] = self._share_buffers()
                    self._traces.clear()  # the arena moved buffers traces may hold
            ys = [y.copy() if self._buffers.holds(y) else y for y in ys]
            return ys, lays
        finally:
            self._lock.release()

    def profile(self, xs, layouts, repeat=5):
        """[(step name, median ms)]: each compiled step's call timed inside whole runs of
        the program (repeat runs), where its inputs come from the step before as in any
        call -- the model's time spent in its kernels; the rest of a call's time is the
        model's own overhead (the loop, input checks, output conversion)."""
        program = self.compiled
        runs = []
        with self._lock:
            for _ in range(max(1, repeat)):
                values = [None] * program.n_slots
                lays = [None] * program.n_slots
                for s, x, lay in zip(program.input_slots, xs, layouts):
                    values[s], lays[s] = x, lay
                times = []
                for step in program.steps:
                    several = isinstance(step.inputs, list)
                    x = [values[s] for s in step.inputs] if several else values[step.inputs]
                    lay = [lays[s] for s in step.inputs] if several else lays[step.inputs]
                    start = time.perf_counter()
                    y, y_lay = step.layer._forward(x, lay)
                    times.append(time.perf_counter() - start)
                    if isinstance(step.outputs, list):
                        for s, a, al in zip(step.outputs, y, y_lay):
                            values[s], lays[s] = a, al
                    else:
                        values[step.outputs], lays[step.outputs] = y, y_lay
                runs.append(times)
        medians = np.median(np.array(runs), axis=0) if program.steps else []
        return [(step.layer.name, 1e3 * float(t)) for step, t in zip(program.steps, medians)]
