// Runtime ISA detection: cpuid + xgetbv on x86-64 (the OS must save the wide registers,
// not only the CPU support them); NEON is baseline on AArch64. And the L2 size.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fastdl/isa.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

namespace fdl {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kRef: return "ref";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kNeon: return "neon";
  }
  return "unknown";
}

namespace {

#if defined(__x86_64__) || defined(_M_X64)
unsigned long long read_xcr0() {
  unsigned int lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

struct X86Features {
  bool avx2 = false, avx512 = false;
  CpuVendor vendor = CpuVendor::kOther;
  X86Features() {
    unsigned a, b, c, d;
    // The vendor string of leaf 0, in ebx, edx, ecx: "AuthenticAMD" or "GenuineIntel".
    if (__get_cpuid(0, &a, &b, &c, &d)) {
      if (b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u) vendor = CpuVendor::kAmd;
      if (b == 0x756e6547u && d == 0x49656e69u && c == 0x6c65746eu) vendor = CpuVendor::kIntel;
    }
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    const bool osxsave = c & (1u << 27), fma = c & (1u << 12), avx = c & (1u << 28);
    if (!osxsave || !avx) return;
    const unsigned long long xcr0 = read_xcr0();
    const bool ymm_state = (xcr0 & 0x6) == 0x6;             // SSE + AVX state
    const bool zmm_state = (xcr0 & 0xe6) == 0xe6;           // + opmask, ZMM_Hi256, Hi16_ZMM
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    const bool has_avx2 = b & (1u << 5);
    const bool f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
    avx2 = ymm_state && fma && has_avx2;
    avx512 = avx2 && zmm_state && f && dq && bw && vl;
  }
};
const X86Features& x86() {
  static const X86Features f;
  return f;
}
#endif

const char* g_cap_error = nullptr;
std::string g_cap_error_text;

Isa best_supported() {
#if defined(__x86_64__) || defined(_M_X64)
  if (x86().avx512) return Isa::kAvx512;
  if (x86().avx2) return Isa::kAvx2;
#elif defined(__aarch64__)
  return Isa::kNeon;
#endif
  return Isa::kRef;
}

Isa initial_isa() {
  Isa best = best_supported();
  const char* env = std::getenv("FASTDL_ISA");
  if (!env || !*env) return best;
  std::string value(env);  // compared case-insensitively, surrounding blanks ignored
  for (char& ch : value) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  value.erase(0, value.find_first_not_of(" \t"));
  value.erase(value.find_last_not_of(" \t") + 1);
  const char* cap = value.c_str();
  static const struct { const char* name; Isa isa; } kNames[] = {
      {"ref", Isa::kRef}, {"scalar", Isa::kRef}, {"avx2", Isa::kAvx2},
      {"avx512", Isa::kAvx512}, {"neon", Isa::kNeon}};
  for (const auto& n : kNames) {
    if (std::strcmp(cap, n.name) != 0) continue;
    if (n.isa == Isa::kNeon || best == Isa::kNeon) {
      // NEON and the x86 levels do not order against each other: ref or the native best.
      return n.isa == Isa::kRef ? Isa::kRef : (n.isa == best ? best : Isa::kRef);
    }
    return static_cast<int>(n.isa) < static_cast<int>(best) ? n.isa : best;
  }
  g_cap_error_text = std::string("FASTDL_ISA='") + env +
                     "' is not one of ref, scalar, avx2, avx512, neon; using " + isa_name(best);
  g_cap_error = g_cap_error_text.c_str();
  return best;
}

std::atomic<int>& active_slot() {
  static std::atomic<int> slot{static_cast<int>(initial_isa())};
  return slot;
}

}  // namespace

bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::kRef: return true;
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::kAvx2: return x86().avx2;
    case Isa::kAvx512: return x86().avx512;
#elif defined(__aarch64__)
    case Isa::kNeon: return true;
#endif
    default: return false;
  }
}

Isa active_isa() { return static_cast<Isa>(active_slot().load(std::memory_order_relaxed)); }

const char* isa_cap_error() {
  active_slot();
  return g_cap_error;
}

bool set_active_isa(Isa isa) {
  if (!cpu_supports(isa)) return false;
  active_slot().store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

CpuVendor cpu_vendor() {
#if defined(__x86_64__) || defined(_M_X64)
  return x86().vendor;
#else
  return CpuVendor::kOther;
#endif
}

std::size_t l2_half_bytes() {
  static const std::size_t bytes = [] {
    const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (l2 <= 0) return std::size_t{256} << 10;
    return std::clamp<std::size_t>(std::size_t(l2) / 2, std::size_t{128} << 10,
                                   std::size_t{1} << 20);
  }();
  return bytes;
}

}  // namespace fdl
