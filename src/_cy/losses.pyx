# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""fastdl._losses: loss kernels as typed loops over buffers (the contract is the one of
fastdl/_reference/losses.py, the NumPy oracle).

Cython because a loss is a typed loop over buffers (DESIGN.md section 1). Every loop runs
without the GIL and accumulates in double (a float32 running sum over 10^6 terms loses ~3
digits), with four partial sums so the additions pipeline. Log-probabilities from logits
come from the SIMD log-softmax of kernels/ (fdl::activation_best().softmax, called through
fastdl._C's kernel table: the one fastdl.ops.log_softmax runs, max-shifted, so logits of any
size are safe), computed per block of samples into a cache-sized scratch buffer. Arguments were validated by
fastdl.ops.losses: shapes, class indices (in [0, C) or == ignore_index) and modes are
trusted here.
"""
from libc.math cimport NAN, exp, expf, fabs, fmax, fmin, isfinite, log, logf
from libc.stdlib cimport free, malloc
from libcpp cimport bool as cbool

from kernel_api cimport FastdlKernelApi, fastdl_kernel_api

cdef const FastdlKernelApi* api = fastdl_kernel_api()


def isa():
    """The ISA of the kernels this module calls now (the one fastdl._C reports)."""
    return api.active_isa().decode()


# Keras clips probabilities to [epsilon, 1 - epsilon] in float32 (keras.backend.epsilon()
# = 1e-7): the bounds are those float32 values, widened to double.
cdef double KERAS_LO = <double><float>1e-7
cdef double KERAS_HI = <double><float>(1.0 - 1e-7)
# Floats of log-probabilities per block: the scratch stays in L2.
cdef Py_ssize_t BLOCK_FLOATS = 16384

cdef enum:
    MSE = 0
    L1 = 1
    BCE = 2
    BCE_LOGITS = 3
    HUBER = 4
    SMOOTH_L1 = 5
    HINGE = 6
    SQUARED_HINGE = 7
    KLD = 8
    KL_DIV = 9
    KL_DIV_LOG = 10
    LOGITS = 0
    LOG_PROBS = 1
    PROBS = 2

POINTWISE_KINDS = {"mse": MSE, "l1": L1, "bce": BCE, "bce_logits": BCE_LOGITS, "huber": HUBER,
                   "smooth_l1": SMOOTH_L1, "hinge": HINGE, "squared_hinge": SQUARED_HINGE,
                   "kld": KLD, "kl_div": KL_DIV, "kl_div_log": KL_DIV_LOG}
MODES = {"logits": LOGITS, "log_probs": LOG_PROBS, "probs": PROBS}


# ---------------------------------------------------------------- pointwise losses

cdef inline float log1p_fast(float a) noexcept nogil:
    """log(1 + a) to a few float ulps at logf's cost (glibc's log1pf is ~2x slower): with
    u = fl(1 + a), log(u) * a / (u - 1) cancels the rounding of u (Goldberg's trick)."""
    cdef float u = 1.0 + a
    if u == 1.0:
        return a
    return logf(u) * (a / (u - 1.0))


cdef inline double keras_clip(double v) noexcept nogil:
    """v clipped to Keras' [epsilon, 1] (kl_divergence's clip; NaN stays NaN)."""
    if v < KERAS_LO:
        return KERAS_LO
    return 1.0 if v > 1.0 else v


cdef inline double pointwise_one(int kind, float x, float t, float pw,
                                 double param) noexcept nogil:
    cdef double d, a, m
    if kind == MSE:
        d = <double>x - t
        return d * d
    if kind == L1:
        return fabs(<double>x - t)
    if kind == BCE:
        # torch clamps each log at -100, so p = 0 or 1 gives a finite loss.
        return -(t * fmax(logf(x), -100.0) + (1.0 - t) * fmax(log1p_fast(-x), -100.0))
    if kind == BCE_LOGITS:
        # torch's stable form: (1 - t) x + (1 + (pw - 1) t) softplus(-x),
        # softplus(-x) = max(-x, 0) + log1p(exp(-|x|)).
        return ((1.0 - t) * x
                + (1.0 + (pw - 1.0) * t) * (fmax(-x, 0.0) + log1p_fast(expf(-fabs(x)))))
    if kind == HUBER:  # param: delta
        d = <double>x - t
        a = fabs(d)
        return 0.5 * d * d if a <= param else param * (a - 0.5 * param)
    if kind == SMOOTH_L1:  # param: beta > 0
        d = <double>x - t
        a = fabs(d)
        return 0.5 * d * d / param if a < param else a - 0.5 * param
    if kind == HINGE or kind == SQUARED_HINGE:
        m = 1.0 - <double>t * x
        if m != m:
            return m
        m = fmax(m, 0.0)
        return m if kind == HINGE else m * m
    if kind == KLD:
        a = keras_clip(t)
        return a * (log(a) - log(keras_clip(x)))
    if kind == KL_DIV:  # xlogy(t, t) - t x: 0 log 0 = 0, log of t < 0 is NaN
        if t == 0.0:
            return -(<double>t * x)
        return (t * log(t) if t > 0 else NAN) - <double>t * x
    return exp(<double>t) * (<double>t - x)  # KL_DIV_LOG


cdef double pointwise_loop(int kind, Py_ssize_t n, const float* x, const float* t,
                           const float* w, const float* pw, float* o,
                           double param) noexcept nogil:
    """The loop per kind and per optional buffer, so each specialisation is branch-free
    inside (pointwise_one inlines with `kind` constant-folded)."""
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, v0, v1, v2, v3
    cdef Py_ssize_t i = 0
    if w == NULL and pw == NULL and o == NULL:
        if kind == MSE:
            while i + 4 <= n:
                v0 = <double>x[i] - t[i]
                v1 = <double>x[i + 1] - t[i + 1]
                v2 = <double>x[i + 2] - t[i + 2]
                v3 = <double>x[i + 3] - t[i + 3]
                s0 += v0 * v0
                s1 += v1 * v1
                s2 += v2 * v2
                s3 += v3 * v3
                i += 4
        elif kind == L1:
            while i + 4 <= n:
                s0 += fabs(<double>x[i] - t[i])
                s1 += fabs(<double>x[i + 1] - t[i + 1])
                s2 += fabs(<double>x[i + 2] - t[i + 2])
                s3 += fabs(<double>x[i + 3] - t[i + 3])
                i += 4
        else:
            while i + 4 <= n:
                s0 += pointwise_one(kind, x[i], t[i], 1.0, param)
                s1 += pointwise_one(kind, x[i + 1], t[i + 1], 1.0, param)
                s2 += pointwise_one(kind, x[i + 2], t[i + 2], 1.0, param)
                s3 += pointwise_one(kind, x[i + 3], t[i + 3], 1.0, param)
                i += 4
        while i < n:
            s0 += pointwise_one(kind, x[i], t[i], 1.0, param)
            i += 1
        return (s0 + s1) + (s2 + s3)
    for i in range(n):  # weights, pos_weight or per-element output: one general loop
        v0 = pointwise_one(kind, x[i], t[i], pw[i] if pw != NULL else 1.0, param)
        if w != NULL:
            v0 = v0 * w[i]
        if o != NULL:
            o[i] = <float>v0
        s0 += v0
    return s0


def pointwise_loss(const float[::1] x, const float[::1] t, weight, pos_weight, str kind,
                   out, double param=1.0):
    """Per-element loss of `kind` (the kinds of fastdl._reference.losses.pointwise_loss)
    over flat float32 x and t of one size, times weight[i] if given; pos_weight[i]
    (bce_logits) if given; param: huber's delta, smooth_l1's beta. Writes the losses into
    `out` (float32, same size) if it is not None; returns their sum (double)."""
    cdef Py_ssize_t n = x.shape[0]
    cdef int k = POINTWISE_KINDS[kind]
    cdef const float[::1] wv, pwv
    cdef float[::1] ov
    cdef const float* w = NULL
    cdef const float* pw = NULL
    cdef float* o = NULL
    if n == 0:
        return 0.0
    if weight is not None:
        wv = weight
        w = &wv[0]
    if pos_weight is not None:
        pwv = pos_weight
        pw = &pwv[0]
    if out is not None:
        ov = out
        o = &ov[0]
    cdef double total
    with nogil:  # the frequent kinds with `kind` a constant, the others through one loop
        if k == MSE:
            total = pointwise_loop(MSE, n, &x[0], &t[0], w, pw, o, param)
        elif k == L1:
            total = pointwise_loop(L1, n, &x[0], &t[0], w, pw, o, param)
        elif k == BCE:
            total = pointwise_loop(BCE, n, &x[0], &t[0], w, pw, o, param)
        elif k == BCE_LOGITS:
            total = pointwise_loop(BCE_LOGITS, n, &x[0], &t[0], w, pw, o, param)
        else:
            total = pointwise_loop(k, n, &x[0], &t[0], w, pw, o, param)
    return total


# ---------------------------------------------------------------- classes along axis 1

cdef inline double keras_log(double p, double total) noexcept nogil:
    """log of p / total clipped to Keras' [epsilon, 1 - epsilon]; NaN if p / total is
    NaN or the total is not finite (Keras' clip keeps NaN, and an infinite total makes
    some ratio inf / inf, whose NaN reaches the sum even times a zero target)."""
    cdef double q = p / total
    if q != q or not isfinite(total):
        return NAN
    return log(fmin(fmax(q, KERAS_LO), KERAS_HI))


cdef double weighted_sum(const float* lp, Py_ssize_t c, Py_ssize_t stride,
                         const float* w) noexcept nogil:
    """sum_k w_k lp[k * stride] (w_k = 1 without weights), four partial sums."""
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    cdef Py_ssize_t k = 0
    if w == NULL:
        while k + 4 <= c:
            s0 += lp[k * stride]
            s1 += lp[(k + 1) * stride]
            s2 += lp[(k + 2) * stride]
            s3 += lp[(k + 3) * stride]
            k += 4
        while k < c:
            s0 += lp[k * stride]
            k += 1
    else:
        while k + 4 <= c:
            s0 += <double>w[k] * lp[k * stride]
            s1 += <double>w[k + 1] * lp[(k + 1) * stride]
            s2 += <double>w[k + 2] * lp[(k + 2) * stride]
            s3 += <double>w[k + 3] * lp[(k + 3) * stride]
            k += 4
        while k < c:
            s0 += <double>w[k] * lp[k * stride]
            k += 1
    return (s0 + s1) + (s2 + s3)


cdef double probs_total(const float* x, Py_ssize_t c, Py_ssize_t stride) noexcept nogil:
    cdef double total = 0.0
    cdef Py_ssize_t k
    for k in range(c):
        total += x[k * stride]
    return total


cdef class Blocks:
    """Log-probabilities of x [outer, C, inner] block by block of outer rows: the SIMD
    log-softmax into scratch (logits; its softmax with log=False), or x itself (log_probs,
    probs)."""
    cdef const float* x
    cdef Py_ssize_t outer, row, rows
    cdef int mode
    cdef bint log
    cdef float* scratch

    def __cinit__(self):
        self.scratch = NULL

    cdef int setup(self, const float* x, Py_ssize_t outer, Py_ssize_t c, Py_ssize_t inner,
                   int mode, bint log=True) except -1:
        """log=False: the probabilities softmax(x) instead (logits; gradients)."""
        self.x, self.outer, self.row, self.mode, self.log = x, outer, c * inner, mode, log
        self.rows = max(1, min(outer, BLOCK_FLOATS // max(1, self.row)))
        if mode == LOGITS:
            self.scratch = <float*>malloc(self.rows * self.row * sizeof(float))
            if self.scratch == NULL:
                raise MemoryError()
        return 0

    cdef const float* block(self, Py_ssize_t i0, Py_ssize_t c, Py_ssize_t inner) noexcept nogil:
        """The log-probabilities (or x) of rows [i0, i0 + rows) (clipped to outer)."""
        cdef Py_ssize_t nb = min(self.rows, self.outer - i0)
        if self.mode != LOGITS:
            return self.x + i0 * self.row
        api.activation_best().softmax(nb, c, inner, self.x + i0 * self.row, self.scratch, 1.0,
                                      self.log)
        return self.scratch

    def __dealloc__(self):
        free(self.scratch)


def class_loss(const float[:, :, ::1] x, const long long[:, ::1] target, weight,
               long long ignore_index, str mode, double smoothing, out):
    """Cross-entropy / NLL with class-index targets over x [outer, C, inner] (classes on
    axis 1) and target [outer, inner]. Per sample s (0 where target == ignore_index):
    nll_s = -w[t] log p[t], smooth_s = -sum_k w_k log p_k (only if smoothing > 0), with
    log p from `mode`: logits (log-softmax), log_probs (x itself), probs (Keras: x / sum,
    clipped, log). Writes (1 - smoothing) nll_s + smoothing / C smooth_s into `out`
    [outer, inner] float32 if it is not None. Returns (sum nll_s, sum smooth_s,
    sum of w[t] over the samples not ignored)."""
    cdef Py_ssize_t outer = x.shape[0], c = x.shape[1], inner = x.shape[2]
    cdef int m = MODES[mode]
    cdef const float[::1] wv
    cdef float[:, ::1] ov
    cdef const float* w = NULL
    cdef float* o = NULL
    if outer * inner * c == 0:
        if out is not None:
            out[...] = 0
        return 0.0, 0.0, 0.0
    if weight is not None:
        wv = weight
        w = &wv[0]
    if out is not None:
        ov = out
        o = &ov[0, 0]
    cdef Blocks blocks = Blocks()
    blocks.setup(&x[0, 0, 0], outer, c, inner, m)
    cdef bint smooth = smoothing > 0.0
    cdef double nll_total = 0.0, smooth_total = 0.0, weight_total = 0.0
    cdef double total, nll, sm, wt, keep = 1.0 - smoothing, spread = smoothing / c
    cdef Py_ssize_t i0 = 0, i, j, k
    cdef long long label
    cdef const float* lp
    cdef const float* sample
    with nogil:
        while i0 < outer:
            lp = blocks.block(i0, c, inner)
            for i in range(i0, min(i0 + blocks.rows, outer)):
                for j in range(inner):
                    label = target[i, j]
                    if label == ignore_index:
                        if o != NULL:
                            o[i * inner + j] = 0.0
                        continue
                    sample = lp + (i - i0) * c * inner + j
                    wt = w[label] if w != NULL else 1.0
                    sm = 0.0
                    if m == PROBS:
                        total = probs_total(sample, c, inner)
                        nll = -wt * keras_log(sample[label * inner], total)
                        if smooth:
                            for k in range(c):
                                sm -= (w[k] if w != NULL else 1.0) * keras_log(
                                    sample[k * inner], total)
                    else:
                        nll = -wt * sample[label * inner]
                        if smooth:
                            sm = -weighted_sum(sample, c, inner, w)
                    nll_total += nll
                    smooth_total += sm
                    weight_total += wt
                    if o != NULL:
                        o[i * inner + j] = <float>(keep * nll + spread * sm)
            i0 += blocks.rows
    return nll_total, smooth_total, weight_total


def soft_target_loss(const float[:, :, ::1] x, const float[:, :, ::1] target, weight,
                     str mode, double smoothing, out):
    """Cross-entropy with probability targets over x and target [outer, C, inner]: per
    sample -sum_k w_k t'_k log p_k with t' = t (1 - smoothing) + smoothing / C and log p
    from `mode` (logits or probs, as class_loss). Writes it into `out` [outer, inner]
    float32 if it is not None; returns the sum."""
    cdef Py_ssize_t outer = x.shape[0], c = x.shape[1], inner = x.shape[2]
    cdef int m = MODES[mode]
    cdef const float[::1] wv
    cdef float[:, ::1] ov
    cdef const float* w = NULL
    cdef float* o = NULL
    if outer * inner * c == 0:
        if out is not None:
            out[...] = 0
        return 0.0
    if weight is not None:
        wv = weight
        w = &wv[0]
    if out is not None:
        ov = out
        o = &ov[0, 0]
    cdef Blocks blocks = Blocks()
    blocks.setup(&x[0, 0, 0], outer, c, inner, m)
    cdef double grand = 0.0, total, s, wk, lpk, tk
    cdef double keep = 1.0 - smoothing, spread = smoothing / c
    cdef Py_ssize_t i0 = 0, i, j, k
    cdef const float* lp
    cdef const float* sample
    cdef const float* trow
    with nogil:
        while i0 < outer:
            lp = blocks.block(i0, c, inner)
            for i in range(i0, min(i0 + blocks.rows, outer)):
                for j in range(inner):
                    sample = lp + (i - i0) * c * inner + j
                    trow = &target[i, 0, j]
                    total = probs_total(sample, c, inner) if m == PROBS else 0.0
                    s = 0.0
                    for k in range(c):
                        wk = w[k] if w != NULL else 1.0
                        tk = trow[k * inner] * keep + spread
                        if m == PROBS:
                            if tk == 0.0:  # clipped, log p is finite: 0 * log p = 0
                                continue
                            lpk = keras_log(sample[k * inner], total)
                        else:
                            lpk = sample[k * inner]
                        s -= wk * tk * lpk
                    if m == PROBS and not isfinite(total):  # as keras_log
                        s = NAN
                    if o != NULL:
                        o[i * inner + j] = <float>s
                    grand += s
            i0 += blocks.rows
    return grand


# ---------------------------------------------------------------- gradients
#
# Each writes d(sum_s g_s loss_s) / dx into `out` (x's shape), g_s = scale * (the sample's
# entry of sample_weight, where given). For the losses over classes the per-sample loss is
# -sum_k a_k log p_k with coefficients a_k (class indices: (1 - smoothing) w_t [k == t] +
# smoothing / C w_k; probabilities: w_k t'_k), whose gradient is
#   logits:    g (p_k A - a_k), p = softmax(x), A = sum_k a_k   (the stable fused form)
#   log_probs: -g a_k
#   probs:     g (G_k + B) / S with q = x / S (S = sum x), G_k = -a_k / q_k where Keras'
#              clip passes q_k (lo <= q_k <= hi) else 0, B = sum of a_k over those k.

cdef inline double pointwise_grad_one(int kind, double x, double t, double pw,
                                      double param) noexcept nogil:
    cdef double d, s, m
    if kind == MSE:
        return 2.0 * (x - t)
    if kind == L1:
        d = x - t
        return 1.0 if d > 0 else (-1.0 if d < 0 else d)  # sign, 0 at 0 (and NaN)
    if kind == BCE:  # torch: (x - t) / max(x (1 - x), 1e-12)
        return (x - t) / fmax(x * (1.0 - x), 1e-12)
    if kind == BCE_LOGITS:
        # (1 - t) - (1 + (pw - 1) t) sigmoid(-x), sigmoid without overflow
        if x >= 0:
            s = expf(<float>-x)
            s = s / (1.0 + s)
        else:
            s = 1.0 / (1.0 + expf(<float>x))
        return (1.0 - t) - (1.0 + (pw - 1.0) * t) * s
    if kind == HUBER:  # clip(d, -delta, delta), NaN stays NaN
        d = x - t
        return param if d > param else (-param if d < -param else d)
    if kind == SMOOTH_L1:  # clip(d / beta, -1, 1)
        d = (x - t) / param
        return 1.0 if d > 1.0 else (-1.0 if d < -1.0 else d)
    if kind == HINGE:  # a tie at the kink takes half, as torch.maximum's gradient
        m = 1.0 - t * x
        if m != m:
            return m
        return -t if m > 0 else (-0.5 * t if m == 0 else 0.0)
    if kind == SQUARED_HINGE:
        m = 1.0 - t * x
        return -2.0 * t * (m if m != m or m > 0 else 0.0)
    if kind == KLD:  # Keras' clip passes the gradient for epsilon <= x <= 1
        if x != x:
            return x
        return -keras_clip(t) / x if (x >= KERAS_LO and x <= 1.0) else 0.0
    if kind == KL_DIV:
        return -t
    return -exp(t)  # KL_DIV_LOG


def pointwise_loss_backward(const float[::1] x, const float[::1] t, weight, pos_weight,
                            str kind, double scale, float[::1] out, double param=1.0):
    """out[i] = scale * weight[i] * d loss_i / d x_i for the pointwise losses of
    pointwise_loss (weight 1 where not given; the gradients of
    fastdl._reference.losses.pointwise_loss_backward)."""
    cdef Py_ssize_t n = x.shape[0], i
    cdef int k = POINTWISE_KINDS[kind]
    cdef const float[::1] wv, pwv
    cdef const float* w = NULL
    cdef const float* pw = NULL
    if n == 0:
        return
    if weight is not None:
        wv = weight
        w = &wv[0]
    if pos_weight is not None:
        pwv = pos_weight
        pw = &pwv[0]
    with nogil:
        for i in range(n):
            out[i] = <float>(scale * (w[i] if w != NULL else 1.0) * pointwise_grad_one(
                k, x[i], t[i], pw[i] if pw != NULL else 1.0, param))


cdef void coefficient_grad(const float* sample, Py_ssize_t c, Py_ssize_t inner, int mode,
                           const double* a, double g, float* o) noexcept nogil:
    """One sample's gradient (see above) from its coefficients a[0, c); `sample` holds the
    probabilities (logits mode) or x, strided by inner, as does o."""
    cdef Py_ssize_t k
    cdef double total = 0.0, inside = 0.0, q, lo_hi_total
    if mode == LOGITS:
        for k in range(c):
            total += a[k]
        for k in range(c):
            o[k * inner] = <float>(g * (sample[k * inner] * total - a[k]))
    elif mode == LOG_PROBS:
        for k in range(c):
            o[k * inner] = <float>(-g * a[k])
    else:
        total = probs_total(sample, c, inner)
        if not isfinite(total):  # the forward loss is NaN (keras_log): so is its gradient
            for k in range(c):
                o[k * inner] = NAN
            return
        for k in range(c):
            q = sample[k * inner] / total
            if q >= KERAS_LO and q <= KERAS_HI:
                inside += a[k]
        for k in range(c):
            q = sample[k * inner] / total
            lo_hi_total = -a[k] / q if (q >= KERAS_LO and q <= KERAS_HI) else 0.0
            o[k * inner] = <float>(g * (lo_hi_total + inside) / total)


cdef class Coefficients:
    """A scratch row of C doubles."""
    cdef double* a

    def __cinit__(self, Py_ssize_t c):
        self.a = <double*>malloc(max(1, c) * sizeof(double))
        if self.a == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.a)


def class_loss_backward(const float[:, :, ::1] x, const long long[:, ::1] target, weight,
                        long long ignore_index, str mode, double smoothing, double scale,
                        sample_weight, float[:, :, ::1] out):
    """The gradient of class_loss's per-sample losses summed with g_s = scale *
    sample_weight[s] (1 where None; sample_weight float32 [outer, inner]) into out
    [outer, C, inner]; 0 for ignored samples."""
    cdef Py_ssize_t outer = x.shape[0], c = x.shape[1], inner = x.shape[2]
    cdef int m = MODES[mode]
    cdef const float[::1] wv
    cdef const float[:, ::1] sv
    cdef const float* w = NULL
    cdef const float* sw = NULL
    if outer * inner * c == 0:
        return
    if weight is not None:
        wv = weight
        w = &wv[0]
    if sample_weight is not None:
        sv = sample_weight
        sw = &sv[0, 0]
    cdef Blocks blocks = Blocks()
    blocks.setup(&x[0, 0, 0], outer, c, inner, m, False)
    cdef Coefficients coef = Coefficients(c)
    cdef double* a = coef.a
    cdef double keep = 1.0 - smoothing, spread = smoothing / c, g
    cdef Py_ssize_t i0 = 0, i, j, k
    cdef long long label
    cdef const float* block
    cdef float* o
    with nogil:
        while i0 < outer:
            block = blocks.block(i0, c, inner)
            for i in range(i0, min(i0 + blocks.rows, outer)):
                for j in range(inner):
                    o = &out[i, 0, j]
                    label = target[i, j]
                    if label == ignore_index:
                        for k in range(c):
                            o[k * inner] = 0.0
                        continue
                    for k in range(c):
                        a[k] = spread * (w[k] if w != NULL else 1.0)
                    a[label] += keep * (w[label] if w != NULL else 1.0)
                    g = scale * (sw[i * inner + j] if sw != NULL else 1.0)
                    coefficient_grad(block + (i - i0) * c * inner + j, c, inner, m, a, g, o)
            i0 += blocks.rows


def soft_target_loss_backward(const float[:, :, ::1] x, const float[:, :, ::1] target, weight,
                              str mode, double smoothing, double scale, sample_weight,
                              float[:, :, ::1] out):
    """The gradient of soft_target_loss's per-sample losses summed with g_s = scale *
    sample_weight[s] (1 where None) into out [outer, C, inner]."""
    cdef Py_ssize_t outer = x.shape[0], c = x.shape[1], inner = x.shape[2]
    cdef int m = MODES[mode]
    cdef const float[::1] wv
    cdef const float[:, ::1] sv
    cdef const float* w = NULL
    cdef const float* sw = NULL
    if outer * inner * c == 0:
        return
    if weight is not None:
        wv = weight
        w = &wv[0]
    if sample_weight is not None:
        sv = sample_weight
        sw = &sv[0, 0]
    cdef Blocks blocks = Blocks()
    blocks.setup(&x[0, 0, 0], outer, c, inner, m, False)
    cdef Coefficients coef = Coefficients(c)
    cdef double* a = coef.a
    cdef double keep = 1.0 - smoothing, spread = smoothing / c, g
    cdef Py_ssize_t i0 = 0, i, j, k
    cdef const float* block
    with nogil:
        while i0 < outer:
            block = blocks.block(i0, c, inner)
            for i in range(i0, min(i0 + blocks.rows, outer)):
                for j in range(inner):
                    for k in range(c):
                        a[k] = (w[k] if w != NULL else 1.0) * (target[i, k, j] * keep + spread)
                    g = scale * (sw[i * inner + j] if sw != NULL else 1.0)
                    coefficient_grad(block + (i - i0) * c * inner + j, c, inner, m, a, g,
                                     &out[i, 0, j])
            i0 += blocks.rows
