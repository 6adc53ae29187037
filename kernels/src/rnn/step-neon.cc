// LSTM/GRU step kernels, neon build of step-kernel.inc.
// 32 q registers: LSTM tiles of 5 rows x 4 gates = 20 accumulators, GRU 6 x 3.
#include <arm_neon.h>

#include <cstddef>
#include <utility>

#include "fastdl/rnn.h"

namespace {
#include "../simd/vec-neon.inc"
#include "../simd/activation-vec.inc"
constexpr int kUnitVectors = 1;
constexpr int kLstmRows = 5;
constexpr int kGruRows = 6;
#include "step-kernel.inc"

#define FDL_RNN_VARIANT(isa, level, unit_block) constexpr int kUnitBlock_##isa = unit_block;
#include "variants.inc"
#undef FDL_RNN_VARIANT
static_assert(kUnitBlock_neon == RnnStep<true>::UB, "variants.inc disagrees with this file");
}  // namespace

void fdl_f32_lstm_step__neon(const fdl::RnnStepArgs& a) { RnnStep<true>::run(a); }
void fdl_f32_gru_step__neon(const fdl::RnnStepArgs& a) { RnnStep<false>::run(a); }
