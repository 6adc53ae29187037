// LSTM/GRU step kernels, avx512 build of step-kernel.inc.
// 32 zmm registers: LSTM tiles of 6 rows x 4 gates = 24 accumulators, GRU 8 x 3.
#include <immintrin.h>

#include <cstddef>
#include <utility>

#include "fastdl/rnn.h"

// GCC 12 flags the deliberately undefined vector inside _mm512_undefined_ps (used by
// _mm512_max_ps & co.) once inlined here: a false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace {
#include "../simd/vec-avx512.inc"
#include "../simd/activation-vec.inc"
constexpr int kUnitVectors = 1;
constexpr int kLstmRows = 6;
constexpr int kGruRows = 8;
#include "step-kernel.inc"

#define FDL_RNN_VARIANT(isa, level, unit_block) constexpr int kUnitBlock_##isa = unit_block;
#include "variants.inc"
#undef FDL_RNN_VARIANT
static_assert(kUnitBlock_avx512 == RnnStep<true>::UB, "variants.inc disagrees with this file");
}  // namespace

void fdl_f32_lstm_step__avx512(const fdl::RnnStepArgs& a) { RnnStep<true>::run(a); }
void fdl_f32_gru_step__avx512(const fdl::RnnStepArgs& a) { RnnStep<false>::run(a); }
