#!/usr/bin/env bash
# Disassembly check of the AArch64 build: every hot NEON kernel contains 128-bit FMLAs
# (`fmla vN.4s`), and nothing beyond ARMv8.0-A + AdvSIMD fp32 is used (the HiKey970's
# Cortex-A73/A53 have no fp16 arithmetic and no dot product).
#
#   bash scripts/arm/check_fmla.sh FILE...
#
# FILE: AArch64 ELF objects, e.g. build/arm/kernels/libfastdl_kernels.a (CMake) and the
# wheel's fastdl/_C.cpython-311-aarch64-linux-gnu.so. Functions are found by their
# (demangled) names, which both keep: the kernels' helpers are static / in anonymous
# namespaces, and -fvisibility=hidden only hides them from the dynamic symbol table. A
# stripped file falls back to whole-file counts.
#
# Kernels checked (the families that must contain fmla vN.4s):
#   gemm       GemmTile<8, 12>::rows<R>             (fdl_f32_gemm__neon_8x12, every R)
#   winograd   WinogradKernel<4>::input/output, WinogradKernel<2>::output
#              (F(2,3)'s input transform is adds/subs only: reported, not required)
#   depthwise  depthwise_plane_*<...> and fdl_f32_depthwise__neon (the 3x3 kernels are
#              inlined into the latter)
#   narrow     narrow_rows<...> and fdl_f32_narrow__neon
#   peak       fdl_f32_peak__neon
#   rnn        RnnStep<...>                          (fdl_f32_lstm_step__neon, fdl_f32_gru_step__neon)
#   activation fdl_f32_{activation,exp,softmax}__neon (vectorised exp: sigmoid/tanh/silu/elu)
#   batchnorm  fdl_f32_batchnorm__neon               (x * scale + shift, fused activation)
# Prints one table per file and, last, a line starting with "objdump:". Exit 1 if a
# family has no fmla vN.4s or a file has an ARMv8.2+ instruction.
set -euo pipefail
OBJDUMP=${CROSS_OBJDUMP:-aarch64-linux-gnu-objdump}
[[ $# -gt 0 ]] || { echo "usage: $0 FILE..." >&2; exit 2; }
command -v "$OBJDUMP" >/dev/null || { echo "$OBJDUMP not found (apt-get install binutils-aarch64-linux-gnu)" >&2; exit 2; }

# family|short name|required|regex over the demangled function name
FAMILIES=(
  'gemm 8x12|gemm|1|GemmTile<8, 12>::rows<'
  'winograd F(4,3) input|wino43-in|1|WinogradKernel<4>::input'
  'winograd F(4,3) output|wino43-out|1|WinogradKernel<4>::output'
  'winograd F(2,3) output|wino23-out|1|WinogradKernel<2>::output'
  'winograd F(2,3) input|wino23-in|0|WinogradKernel<2>::input'
  'depthwise|depthwise|1|depthwise_plane_|^fdl_f32_depthwise__neon'
  'narrow conv|narrow|1|narrow_rows<|^fdl_f32_narrow__neon'
  'peak|peak|1|^fdl_f32_peak__neon'
  'rnn step|rnn|1|RnnStep<'
  'activation|activation|1|^fdl_f32_(activation|exp|softmax)__neon'
  'batch norm|batchnorm|1|^fdl_f32_batchnorm__neon'
)
# Beyond ARMv8.0-A: dot product, fp16 arithmetic (vector .4h/.8h or scalar h registers),
# fp16 widening FMA, bf16, int8 matrix multiply.
V82='^\s*[0-9a-f]+:\s+(sdot|udot|usdot|sudot|fmlal2?|fmlsl2?|bfdot|bfmmla|bfmlal[bt]|smmla|ummla|usmmla)\s|^\s*[0-9a-f]+:\s+f(add|sub|mul|mla|mls|div|max|min|maxnm|minnm|abd|sqrt|neg|abs|cvtzs|cvtzu|rint[a-z]?|cm[a-z]+)[a-z]*\s+(v[0-9]+\.[48]h|h[0-9]+),'

status=0
summary=()
for f in "$@"; do
  dis=$(mktemp)
  "$OBJDUMP" -d -C --no-show-raw-insn "$f" > "$dis"
  # Per function: number of fmla vN.4s (objdump prints "<name>:" headers per symbol).
  table=$(awk '
    /^[0-9a-f]+ <.*>:$/ { fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/>:$/, "", fn); seen[fn] = 1 }
    /\tfmla\tv[0-9]+\.4s/ { n[fn]++ }
    END { for (f in seen) printf "%d\t%s\n", n[f] + 0, f }' "$dis")
  total=$(grep -cE $'\tfmla\tv[0-9]+\\.4s' "$dis" || true)
  echo "== $(basename "$f"): $total fmla vN.4s in all"
  if [[ $(wc -l <<< "$table") -le 1 ]]; then
    echo "   (no symbols: stripped; whole-file count only)"
    [[ $total -gt 0 ]] || { echo "   FAIL: no fmla vN.4s at all"; status=1; }
  else
    fams=()
    for fam in "${FAMILIES[@]}"; do
      IFS='|' read -r name short required regex <<< "$fam"
      rows=$(awk -F'\t' -v re="$regex" '$2 ~ re' <<< "$table" | sort -t$'\t' -k2)
      nfn=$(grep -c . <<< "$rows" || true)
      nfmla=$(awk -F'\t' '{ s += $1 } END { print s + 0 }' <<< "$rows")
      withf=$(awk -F'\t' '$1 > 0' <<< "$rows" | grep -c . || true)
      verdict=ok
      if [[ $required == 1 && $withf -eq 0 ]]; then verdict=FAIL; status=1; fi
      [[ $required == 0 ]] && verdict="info"
      printf '   %-24s %-4s %3d function(s), %3d with fmla, %5d fmla vN.4s\n' \
             "$name" "$verdict" "$nfn" "$withf" "$nfmla"
      fams+=("$short $nfmla")
    done
    summary=("$(basename "$f"): $(IFS=,; echo "${fams[*]}" | sed 's/,/, /g')")
  fi
  bad=$(grep -cE "$V82" "$dis" || true)
  if [[ $bad -gt 0 ]]; then
    echo "   FAIL: $bad instruction(s) beyond ARMv8.0-A fp32 NEON:"
    grep -E "$V82" "$dis" | head -n 5 | sed 's/^/     /'
    status=1
  else
    echo "   no dot-product / fp16 / bf16 / i8mm instructions"
  fi
  rm -f "$dis"
done
if [[ $status == 0 ]]; then
  echo "objdump: fmla vN.4s in every hot kernel, no ARMv8.2+ instructions; ${summary[*]:-}"
else
  echo "objdump: FAILED (see above)"
fi
exit $status
