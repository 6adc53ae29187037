"""A model's trace with its kernels bound: runs of steps replayed by one native call.

Once a model's buffers are placed (inference.InferenceRunner), a trace's steps read and
write the same memory on every call with inputs of its signature. A step whose inputs and
output all lie in those buffers can then be fixed to that memory as BoundCalls (the native
backend's bind methods, fastdl/_contract.py), and a run of such steps becomes one
CallSequence: one call from Python, the GIL released once, instead of a Python call with
its checks per step (about a microsecond each; a tenth of ShuffleNet's call at batch 1).

What a step binds to, from the arrays its recorded call took and gave (`_bind(x, layout, y)`
on the step classes of inference.py): the kernel call its next calls would make, or
nothing at all for a layer whose output is a view of its input (`_view_at_inference`:
Flatten, Reshape, Slice). Steps reading a model input (new memory every call), steps that
give new arrays, and anything a step does not bind stay Python calls between the runs.
"""
import numpy as np

from fastdl._backend import kernels


def available():
    """Whether the backend binds calls (the native one)."""
    return getattr(kernels, "CallSequence", None) is not None


def bind_call(binder, *args):
    """[binder.bind(*args)] where `binder` binds (the native backend's plans; a PoolPlan may
    decline with None), else None: what a step's _bind returns for one kernel call."""
    bind = getattr(binder, "bind", None)
    call = None if bind is None else bind(*args)
    return None if call is None else [call]


def bound_calls(step, x, layout, y, fixed, input_index=None):
    """The BoundCalls computing y from x as `step`'s next calls would ([] where y is a view
    of x), or None where the step stays a Python call. `input_index`: which model input x
    is, if it is one (new memory every call: only a step that copies it anyway, converting
    its layout, binds to it, through the sequence's inputs)."""
    if not available():
        return None
    if input_index is not None:
        bind = getattr(step, "_bind_input", None)
        if bind is None or not fixed(y):
            return None
        try:
            return bind(input_index, x, layout, y)
        except ValueError:
            return None
    xs = x if isinstance(x, list) else [x]
    ys = list(y) if isinstance(y, (list, tuple)) else [y]
    if not all(fixed(a) for a in xs + ys):
        return None
    if getattr(step, "_view_at_inference", False):
        base = xs[0] if xs[0].base is None else xs[0].base
        viewed = len(xs) == len(ys) == 1 and ys[0].base is base and np.may_share_memory(
            xs[0], ys[0])
        return [] if viewed else None
    bind = getattr(step, "_bind", None)
    if bind is None:
        return None
    try:
        return bind(x, layout, y)
    except ValueError:  # a layout the kernels refuse to bind: the step's own call runs
        return None


def with_bound_runs(ops, bound, outputs, input_slots, output_slots):
    """`ops` (a _Trace's: (call, ins, outs, several_in, several_out, free)) with each run of
    consecutive steps that bound (bound[i] not None, at least one call) replaced by one op
    running their CallSequence, given the model's inputs where its steps read them.
    `outputs[i]` is what step i gave (the arrays later Python ops and the model's outputs
    then read); the op sets the slots its steps make that are read after it."""
    read_after = [set() for _ in range(len(ops) + 1)]  # slots read by ops i.. or outputs
    read_after[len(ops)] = set(output_slots)
    for i in range(len(ops) - 1, -1, -1):
        ins = ops[i][1]
        read_after[i] = read_after[i + 1] | set(ins if ops[i][3] else [ins])
    result, i = [], 0
    while i < len(ops):
        if bound[i] is None:
            result.append(ops[i])
            i += 1
            continue
        j = i + 1
        while j < len(ops) and bound[j] is not None:
            j += 1
        calls = [c for b in bound[i:j] for c in b]
        if calls:
            result.append(_run_op(ops[i:j], outputs[i:j], kernels.CallSequence(calls),
                                  read_after[j], input_slots))
        else:  # views only: nothing to run natively
            result.extend(ops[i:j])
        i = j
    return result


def _run_op(run, outputs, sequence, read_later, input_slots):
    """One trace op running `sequence` for the steps `run` (which gave `outputs`)."""
    made = {}  # slot -> the array its step gave (in the model's buffers)
    inside = set()
    for (_, ins, outs, several_in, several_out, _), y in zip(run, outputs):
        inside.update(outs if several_out else [outs])
        for s, a in (zip(outs, y) if several_out else [(outs, y)]):
            made[s] = a
    needed = [s for s in made if s in read_later]
    free = tuple(s for op in run for s in op[5])
    first_ins = run[0][1]
    reads = {s for op in run for s in (op[1] if op[3] else [op[1]])} - inside
    takes_inputs = bool(reads & set(input_slots))  # through bound input copies
    if len(needed) == 1 and not run[0][3] and reads == {first_ins}:
        # One slot in, one out (a Sequential model's run): the trace's chain form holds.
        y = made[needed[0]]
        if takes_inputs:  # first_ins is the model's only input read

            def call_on_input(x):
                sequence.run([x])
                return y
            return call_on_input, first_ins, needed[0], False, False, free

        def call(_):
            sequence.run()
            return y
        return call, first_ins, needed[0], False, False, free
    arrays = [made[s] for s in needed]

    def call_several(inputs):
        sequence.run(inputs)
        return arrays
    return (call_several, list(input_slots) if takes_inputs else [], needed, True, True,
            free)
