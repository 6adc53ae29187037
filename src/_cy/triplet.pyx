# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""fastdl._triplet: the triplet margin loss and its gradient as typed loops over rows of
embeddings (the contract is the one of fastdl/_reference/triplet.py, the NumPy oracle).

Cython for the same reason as fastdl._losses: a loop over buffers, without the GIL, summing
in double. Each row's three distances ||x - y + eps||_p take one pass over its D floats;
the gradient takes a second pass that writes the three rows. Arguments were validated by
fastdl.ops.triplet (shapes, p > 0 finite).
"""
from libc.math cimport fabs, pow, sqrt


cdef inline double distance(const float* x, const float* y, Py_ssize_t d, double p,
                            double eps) noexcept nogil:
    """||x - y + eps||_p over d floats; p = 2 and p = 1 without pow."""
    cdef double s = 0.0, u
    cdef Py_ssize_t j
    if p == 2.0:
        for j in range(d):
            u = <double>x[j] - y[j] + eps
            s += u * u
        return sqrt(s)
    if p == 1.0:
        for j in range(d):
            s += fabs(<double>x[j] - y[j] + eps)
        return s
    for j in range(d):
        s += pow(fabs(<double>x[j] - y[j] + eps), p)
    return pow(s, 1.0 / p)


cdef inline double norm_grad(double u, double norm, double p) noexcept nogil:
    """d ||u||_p / d u_j for one coordinate u_j of a vector of norm `norm`: sign(u)
    |u|^(p-1) / norm^(p-1), 0 where the norm is 0 (torch's norm gradient there)."""
    cdef double sign
    if norm == 0.0:
        return 0.0
    if p == 2.0:
        return u / norm
    sign = 1.0 if u > 0 else (-1.0 if u < 0 else 0.0)
    if p == 1.0:
        return sign
    return sign * pow(fabs(u), p - 1.0) / pow(norm, p - 1.0)


cdef struct Row:
    double d_ap, d_an, d_pn, c_an, c_pn, value


cdef inline Row row_terms(const float* a, const float* pos, const float* neg, Py_ssize_t d,
                          double margin, double p, double eps, bint swap) noexcept nogil:
    """The row's distances, the weights of d_an and d_pn in the negative distance (swap:
    the smaller one; a tie takes half each, as torch.minimum's gradient) and
    margin + d_ap - d_neg."""
    cdef Row r
    r.d_ap = distance(a, pos, d, p, eps)
    r.d_an = distance(a, neg, d, p, eps)
    r.d_pn, r.c_an, r.c_pn = 0.0, 1.0, 0.0
    if swap:
        r.d_pn = distance(pos, neg, d, p, eps)
        if r.d_pn < r.d_an:
            r.c_an, r.c_pn = 0.0, 1.0
        elif r.d_pn == r.d_an:
            r.c_an, r.c_pn = 0.5, 0.5
    r.value = margin + r.d_ap - (r.d_pn if r.c_pn == 1.0 else r.d_an)
    return r


def triplet_loss(const float[:, ::1] anchor, const float[:, ::1] positive,
                 const float[:, ::1] negative, double margin, double p, double eps, bint swap,
                 out):
    """max(margin + d_ap - d_neg, 0) per row of [N, D] anchor, positive, negative (NaN
    stays NaN); written into `out` ([N] float32) if it is not None; returns the sum."""
    cdef Py_ssize_t n = anchor.shape[0], d = anchor.shape[1], i
    cdef float[::1] ov
    cdef float* o = NULL
    cdef double total = 0.0, v
    cdef Row r
    if n == 0:
        return 0.0
    if out is not None:
        ov = out
        o = &ov[0]
    with nogil:
        for i in range(n):
            r = row_terms(&anchor[i, 0], &positive[i, 0], &negative[i, 0], d, margin, p, eps,
                          swap)
            v = r.value if (r.value >= 0 or r.value != r.value) else 0.0
            if o != NULL:
                o[i] = <float>v
            total += v
    return total


def triplet_loss_backward(const float[:, ::1] anchor, const float[:, ::1] positive,
                          const float[:, ::1] negative, double margin, double p, double eps,
                          bint swap, double scale, sample_weight, float[:, ::1] out_anchor,
                          float[:, ::1] out_positive, float[:, ::1] out_negative):
    """The gradients of sum_i g_i loss_i (g_i = scale * sample_weight[i], 1 where None)
    into the three [N, D] outputs; 0 for rows where margin + d_ap - d_neg < 0."""
    cdef Py_ssize_t n = anchor.shape[0], d = anchor.shape[1], i, j
    cdef const float[::1] sv
    cdef const float* sw = NULL
    cdef const float* a
    cdef const float* ps
    cdef const float* ng
    cdef double g, g_ap, g_an, g_pn
    cdef Row r
    if n == 0:
        return
    if sample_weight is not None:
        sv = sample_weight
        sw = &sv[0]
    with nogil:
        for i in range(n):
            a, ps, ng = &anchor[i, 0], &positive[i, 0], &negative[i, 0]
            r = row_terms(a, ps, ng, d, margin, p, eps, swap)
            if not r.value >= 0:  # clamp_min passes no gradient (nor does a NaN row)
                for j in range(d):
                    out_anchor[i, j] = 0.0
                    out_positive[i, j] = 0.0
                    out_negative[i, j] = 0.0
                continue
            g = scale * (sw[i] if sw != NULL else 1.0)
            for j in range(d):
                g_ap = norm_grad(<double>a[j] - ps[j] + eps, r.d_ap, p)
                g_an = r.c_an * norm_grad(<double>a[j] - ng[j] + eps, r.d_an, p)
                g_pn = 0.0
                if r.c_pn != 0.0:
                    g_pn = r.c_pn * norm_grad(<double>ps[j] - ng[j] + eps, r.d_pn, p)
                out_anchor[i, j] = <float>(g * (g_ap - g_an))
                out_positive[i, j] = <float>(g * (-g_ap - g_pn))
                out_negative[i, j] = <float>(g * (g_an + g_pn))
