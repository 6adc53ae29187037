# The kernels' entry points for the Cython modules, through fastdl._C's capsule (see
# src/kernel_api.h: only fastdl._C links the kernels, so every module runs one copy of them).
from libcpp cimport bool as cbool


cdef extern from "fastdl/conv.h" namespace "fdl" nogil:
    cdef cppclass Size3:
        Size3()
        size_t& operator[](size_t)

    cdef cppclass ConvGeometry:
        size_t in_channels, out_channels, groups
        Size3 kernel, stride, dilation, pad_before, pad_after
        size_t taps()

    size_t volume(const Size3& s)


cdef extern from "fastdl/activation.h" namespace "fdl" nogil:
    ctypedef void (*SoftmaxFn)(size_t outer, size_t n, size_t inner, const float* x,
                               float* y, float scale, cbool log) noexcept nogil

    cdef cppclass ActivationVariant:
        SoftmaxFn softmax


cdef extern from "fastdl/optimizer.h" namespace "fdl" nogil:
    cdef cppclass OptimizerStep:
        OptimizerStep()
        float lr, momentum, rho, beta_1, beta_2, epsilon, decay
        cbool nesterov


cdef extern from "kernel_api.h" nogil:
    ctypedef struct FastdlKernelApi:
        const char* (*active_isa)() noexcept nogil
        Size3 (*conv_out_size)(const ConvGeometry& g, const Size3& size) noexcept nogil
        void (*im2col)(const ConvGeometry& g, const float* x, const Size3& size,
                       float* cols) noexcept nogil
        void (*col2im)(const ConvGeometry& g, const float* cols, const Size3& size,
                       float* y) noexcept nogil
        const ActivationVariant* (*activation_best)() noexcept nogil
        void (*sgd_update)(size_t n, float* w, const float* g, float* velocity,
                           const OptimizerStep& s) noexcept nogil
        void (*rmsprop_update)(size_t n, float* w, const float* g, float* rms, float* mom,
                               float* avg, const OptimizerStep& s) noexcept nogil
        void (*adam_update)(size_t n, float* w, const float* g, float* m, float* v,
                            float* vhat, const OptimizerStep& s) noexcept nogil
        void (*adagrad_update)(size_t n, float* w, const float* g, float* acc,
                               const OptimizerStep& s) noexcept nogil


cdef extern from "kernel_api.h":
    const FastdlKernelApi* fastdl_kernel_api() except NULL
