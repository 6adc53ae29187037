// LSTM/GRU step kernels, avx2 build of step-kernel.inc.
// 16 ymm registers: LSTM tiles of 3 rows x 4 gates = 12 accumulators, GRU 4 x 3.
#include <immintrin.h>

#include <cstddef>
#include <utility>

#include "fastdl/rnn.h"

namespace {
#include "../simd/vec-avx2.inc"
#include "../simd/activation-vec.inc"
constexpr int kUnitVectors = 1;
constexpr int kLstmRows = 3;
constexpr int kGruRows = 4;
#include "step-kernel.inc"

#define FDL_RNN_VARIANT(isa, level, unit_block) constexpr int kUnitBlock_##isa = unit_block;
#include "variants.inc"
#undef FDL_RNN_VARIANT
static_assert(kUnitBlock_avx2 == RnnStep<true>::UB, "variants.inc disagrees with this file");
}  // namespace

void fdl_f32_lstm_step__avx2(const fdl::RnnStepArgs& a) { RnnStep<true>::run(a); }
void fdl_f32_gru_step__avx2(const fdl::RnnStepArgs& a) { RnnStep<false>::run(a); }
