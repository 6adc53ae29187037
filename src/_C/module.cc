// fastdl._C: the pybind11 module over the kernels (the one copy of them in the process; the
// Cython modules call them through the capsule of kernel_api.cc). Arguments were validated
// by fastdl/; each binding file converts, allocates, releases the GIL and calls a kernel.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "fastdl/isa.h"
#include "fastdl/peak.h"
#include "fastdl/threadpool.h"

namespace py = pybind11;
using namespace fastdl_bindings;

namespace {

fdl::Isa parse_isa(const std::string& name) {
  for (fdl::Isa isa : {fdl::Isa::kRef, fdl::Isa::kAvx2, fdl::Isa::kAvx512, fdl::Isa::kNeon})
    if (name == fdl::isa_name(isa)) return isa;
  throw py::value_error("isa: expected one of 'ref', 'avx2', 'avx512', 'neon', got '" + name + "'");
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastdl's compiled kernels (see fastdl.ops for the public API)";

  m.def("isa", [] { return std::string(fdl::isa_name(fdl::active_isa())); },
        "The instruction set the kernels use now.");
  m.def("isa_cap_error", []() -> py::object {
    const char* e = fdl::isa_cap_error();
    return e ? py::object(py::str(e)) : py::object(py::none());
  });
  m.def("set_isa", [](const std::string& name) {
    if (!fdl::set_active_isa(parse_isa(name)))
      throw py::value_error("isa: this CPU cannot run '" + name + "'");
  }, py::arg("name"),
     "Caps the ISA at run time, as FASTDL_ISA does at start, for every module: kernels chosen "
     "from now on (plans built from now on, functional calls) use it; existing plans keep "
     "theirs.");
  m.def("cpu_supports", [](const std::string& name) { return fdl::cpu_supports(parse_isa(name)); });
  m.def("cpu_vendor", [] {
    switch (fdl::cpu_vendor()) {
      case fdl::CpuVendor::kAmd: return std::string("amd");
      case fdl::CpuVendor::kIntel: return std::string("intel");
      default: return std::string("other");
    }
  }, "'amd' or 'intel' (x86), else 'other': the maker some tuning choices follow.");

  m.def("num_threads", &fdl::num_threads);
  m.def("set_num_threads", &fdl::set_num_threads, py::arg("n"));
  m.def("set_thread_affinity", [](const std::vector<int>& cpus) {
    return fdl::set_thread_affinity(cpus.data(), static_cast<int>(cpus.size()));
  }, py::arg("cpus"));

  register_variants("peak", [] { return variants_dict(fdl::peak_variants()); });
  m.def("fma_peak_gflops", [](double seconds, const py::object& variant) {
    const auto& table = fdl::peak_variants();
    const fdl::PeakVariant& v = pick_variant(table, fdl::best_variant(table), variant, "peak");
    py::gil_scoped_release release;
    return fdl::fma_peak_gflops(seconds, &v);
  }, py::arg("seconds") = 0.2, py::arg("variant") = py::none(),
     "Measured FMA throughput in GFLOP/s of all fastdl threads with the active ISA.");

  init_interrupts();
  bind_variants(m);
  bind_bound_calls(m);
  bind_gemm(m);
  bind_conv(m);
  bind_pooling(m);
  bind_activation(m);
  bind_batchnorm(m);
  bind_embedding(m);
  bind_rnn(m);
  bind_optimizer(m);
  bind_kernel_api(m);
}
