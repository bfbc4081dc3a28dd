#!/usr/bin/env bash
# CUDA kernel syntax check without a CUDA toolkit: every kernels/*.cu (and the engine's llama.cu in seven builds,
# plain, MK_VIRTUAL_BLOCKS, MK_GROUP_QKV=1, both, MK_DOWN_ROTATE=0, and MK_ARGS_SMEM=0 / 2 with MK_VIRTUAL_BLOCKS) parsed and semantically checked by clang in device-only mode (-fsyntax-only), with
# nvrtc_shim.h standing in for what NVRTC predefines (qualifiers, vector types, atomics; math and intrinsics from
# clang's own CUDA headers), once as sm_80 and once with __CUDA_ARCH__ = 900 (the Hopper-only paths). Inline PTX is
# not checked (ptxas does that on a GPU host), and helpers NVRTC takes as device code by default
# (--device-as-default-execution-space) must carry __device__ here.
# Usage: check.sh [ROOT] -> one line per check, then "kernels: N passed, N failed" (or "kernels: SKIPPED, why", exit 3).
set -uo pipefail
shopt -s nullglob
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
here=$(cd "$(dirname "$0")" && pwd)
clang=""
for c in ${GPUOPS_CLANG:-} clang clang-20 clang-19 clang-18 clang-17 clang-16 clang-15 clang-14 /usr/lib/llvm-*/bin/clang; do
  command -v "$c" >/dev/null 2>&1 || continue
  printf '__global__ void k(int* p) { p[threadIdx.x] = 1; }\n' > /tmp/gpuops-kcheck-probe.cu
  if "$c" -x cuda --cuda-device-only -nocudainc -nocudalib --cuda-gpu-arch=sm_80 -fsyntax-only -include "$here/nvrtc_shim.h" -I"$here" /tmp/gpuops-kcheck-probe.cu >/dev/null 2>&1; then clang=$c; break; fi
done
rm -f /tmp/gpuops-kcheck-probe.cu
if [ -z "$clang" ]; then echo "kernels: SKIPPED, no clang with CUDA device support on PATH (Debian: apt install clang-14)"; exit 3; fi
pass=0 fail=0
check() {   # name, file, extra flags...
  local name=$1 f=$2; shift 2
  local out
  out=$("$clang" -x cuda --cuda-device-only -nocudainc -nocudalib --cuda-gpu-arch=sm_80 -std=c++17 -fsyntax-only -Wno-unknown-cuda-version \
        -include "$here/nvrtc_shim.h" -I"$here" -I"$(dirname "$f")" "$@" "$f" 2>&1)
  if [ $? -eq 0 ] && ! grep -q "error:" <<<"$out"; then echo "  ok    $name"; pass=$((pass + 1))
  else echo "  FAIL  $name"; echo "$out" | grep -E "error:" | head -10 | sed 's/^/        /'; fail=$((fail + 1)); fi
}
for f in "$root"/kernels/*.cu "$root"/kernels/engine/*.cu; do
  rel=${f#"$root"/}
  variants=("")
  [ "$rel" = kernels/engine/llama.cu ] && variants=("" "-DMK_VIRTUAL_BLOCKS" "-DMK_GROUP_QKV=1" "-DMK_VIRTUAL_BLOCKS -DMK_GROUP_QKV=1" "-DMK_DOWN_ROTATE=0" "-DMK_VIRTUAL_BLOCKS -DMK_ARGS_SMEM=0" "-DMK_VIRTUAL_BLOCKS -DMK_ARGS_SMEM=2")
  for v in "${variants[@]}"; do
    check "$rel ${v:+$v }(sm_80)" "$f" $v
    check "$rel ${v:+$v }(__CUDA_ARCH__ 900)" "$f" $v -U__CUDA_ARCH__ -D__CUDA_ARCH__=900
  done
done
echo "kernels: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
