#!/usr/bin/env bash
# Static throughput model of the NEON SGEMM microkernel's inner loop on the Cortex-A73.
#
#   bash scripts/arm/mca.sh [SOURCE.cc [SYMBOL_PART]]
#
# Default: kernels/src/gemm/gemm-neon.cc and the mangled-name part of
# GemmTile<8,12>::rows<8, 8, 3, 0> (GemmTileILi8ELi12EE4rowsILi8ELi8ELi3ELi0EE). Another
# function's hottest loop can be looked at the same way (the loop picked is the
# single-block loop with the most FMLAs; loops with branches inside, e.g. the depthwise
# kernel's row-bounds checks, are only approximated).
#
# Compiles SOURCE with the flags the build uses for -neon.cc files
# (aarch64-linux-gnu-g++ -O3 -mcpu=cortex-a73 -S), extracts the k-loop of the full
# 8-row tile (GemmTile<8, 12>::rows<8>, the code fdl_f32_gemm__neon_8x12 runs for every
# full tile), and feeds it to llvm-mca-14 -mtriple=aarch64 -mcpu=cortex-a73.
#
# Read the numbers with care: LLVM has no Cortex-A73 scheduling model and models it with
# the Cortex-A57's (3-wide dispatch, two 64-bit FP/ASIMD pipes that a Q-form FMLA occupies
# together: one 128-bit FMLA per cycle, as on the A73). The A73 decodes only 2 instructions
# per cycle, so the loop is also run with -dispatch=2 to show whether the front end, not
# the FMA pipe, would bound it (llvm-mca counts the model's micro-ops there, and the A57
# model cracks ldp/str of q registers into several: that figure leans pessimistic). llvm-mca assumes loads hit L1 and (by default) that loads
# and stores do not alias, so stack spills show up as extra load/store work, not as
# store-to-load latency.
#
# Prints the loop, the llvm-mca summaries and, last, one line:
#   FMLA/cycle: <A57 model> (<A57 model, 2-wide dispatch>) ...
# Needs: g++-aarch64-linux-gnu, llvm-14 (Debian). Work files: build/arm/mca/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SRC=${1:-$ROOT/kernels/src/gemm/gemm-neon.cc}
PART=${2:-GemmTileILi8ELi12EE4rowsILi8ELi8ELi3ELi0EE}
OUT=${FASTDL_ARM_WORK:-$ROOT/build/arm}/mca
MCA=${LLVM_MCA:-llvm-mca-14}
CXX=${CROSS_CXX:-aarch64-linux-gnu-g++}
mkdir -p "$OUT"
for tool in "$CXX" "$MCA"; do
  command -v "$tool" >/dev/null || { echo "mca.sh: $tool not found (apt-get install g++-aarch64-linux-gnu llvm-14)" >&2; exit 2; }
done

asm=$OUT/$(basename "$SRC" .cc).s
"$CXX" -O3 -std=c++17 -mcpu=cortex-a73 -I"$ROOT/kernels/include" -S -o "$asm" "$SRC"

# The function: by default the 8-row instantiation of the microkernel template (mangled
# name of (anonymous namespace)::GemmTile<8, 12>::rows<8, 8, 3, 0>: 8 rows, A stride 8, 3
# vectors, no extra columns).
sym=$(grep -oE "^_Z[A-Za-z0-9_]*${PART}[A-Za-z0-9_]*:" "$asm" | head -n1 | tr -d : || true)
if [[ -z $sym ]]; then
  echo "mca.sh: no function matching $PART in $asm" >&2
  exit 1
fi

# Within that function, the k-loop of the register tile: the loop (a label and a later
# conditional branch back to it) with no other branch inside, holding the most FMLAs.
# GCC emits the fully unrolled tile as such a single-block loop; failing that, the loop
# with the highest share of FMLAs is taken.
loop=$OUT/$(basename "$SRC" .cc)-$PART-loop.s
awk -v sym="$sym" '
  $0 == sym ":" { inside = 1; next }
  inside && /^\t\.size\t/ { inside = 0 }
  inside { n++; line[n] = $0 }
  END {
    best = 0; best_score = -1
    for (i = 1; i <= n; i++) {
      if (line[i] !~ /^\.L[0-9A-Za-z_]+:$/) continue
      lab = substr(line[i], 1, length(line[i]) - 1)
      f = 0; other = 0; insn = 0
      for (j = i + 1; j <= n; j++) {
        if (line[j] ~ /^\t[a-z]/ && line[j] !~ /^\t\./) insn++
        if (line[j] ~ /^\t(fmla|fmls)\t/) f++
        k = split(line[j], tok, /[ \t,]+/)
        if (line[j] ~ /^\t(b|b\.[a-z]+|bne|beq|cbz|cbnz|tbz|tbnz)\t/ && tok[k] == lab) {
          if (f > 0) {
            # Single-block loops first (score 1e6 + FMLAs), then FMLA share.
            score = other == 0 ? 1e6 + f : f / insn
            if (score > best_score) { best_score = score; lo = i; hi = j; best = 1 }
          }
          break
        }
        if (line[j] ~ /^\t(b|b\.[a-z]+|bne|beq|cbz|cbnz|tbz|tbnz|br|ret|bl|blr)\t?/) other++
      }
    }
    if (!best) exit 1
    for (i = lo; i <= hi; i++)
      if (line[i] !~ /^\t\./) print line[i]   # drop assembler directives (.p2align, .cfi_*)
  }' "$asm" > "$loop" || { echo "mca.sh: no FMLA loop found in $sym" >&2; exit 1; }

count() { grep -cE "$1" "$loop" || true; }
n_insn=$(grep -cvE '^\.L' "$loop")
n_fmla=$(count $'^\t(fmla|fmls)\t')
n_ld=$(count $'^\t(ldr|ldur|ldp|ld1|ld1r|ld2|ld3|ld4)\t')
n_st=$(count $'^\t(str|stur|stp|st1|st2|st3|st4)\t')
n_spill=$(count $'^\t(ldr|ldur|ldp|str|stur|stp)\t.*\\[sp')

echo "== $(basename "$SRC"): hottest loop of $(c++filt "$sym" 2>/dev/null || echo "$sym")"
echo "   $n_insn instructions per iteration: $n_fmla FMLA, $n_ld loads, $n_st stores," \
     "$n_spill of them stack spill/reload"
sed 's/^/   /' "$loop"

iters=1000
run_mca() {  # $1: extra flags; prints the summary, sets CYC (cycles per iteration)
  local out
  out=$("$MCA" -mtriple=aarch64 -mcpu=cortex-a73 -iterations=$iters "$@" "$loop" 2>&1)
  echo "$out" | sed -n '1,/^Block RThroughput/p' | sed 's/^/   /'
  echo "$out" | sed -n '/^Resources:/,/^Resource pressure by instruction/p' | sed '$d' | sed 's/^/   /'
  CYC=$(echo "$out" | awk '/^Total Cycles:/ { print $3 / '"$iters"' }')
}
echo "== llvm-mca-14 -mcpu=cortex-a73 (Cortex-A57 scheduling model, 3-wide dispatch)"
run_mca
cyc3=$CYC
echo "== same, -dispatch=2 (the A73's 2-wide decode)"
run_mca -dispatch=2
cyc2=$CYC

awk -v f="$n_fmla" -v c3="$cyc3" -v c2="$cyc2" 'BEGIN {
  printf "FMLA/cycle: %.2f (A57 model, %.1f cycles per iteration of %d FMLA); %.2f with 2-wide dispatch (%.1f cycles); peak 1.00 = 8 FLOP/cycle = 18.9 GFLOP/s at 2.36 GHz\n",
         f / c3, c3, f, f / c2, c2 }'
