#!/usr/bin/env bash
# On a GPU host (device tool, no .NET needed): build the decode harness with nvcc, one binary per build spec
# ("name:extra nvcc flags", built in parallel), then run each "name:flags,flags,..." in turn, e.g.
#   bash bench/decode-harness/run.sh "k:" -- k:93,13
#   cp <old llama.cu> kernels/engine/llama_base.cu   # (untracked) to A/B against another version of the kernel:
#   bash bench/decode-harness/run.sh "base:-DKFILE='\"../../kernels/engine/llama_base.cu\"'" "k:" -- base:93 k:93
# A build named base saves its first-step logits; every other build compares its own with them (max |diff|, argmax).
# HARNESS_ARGS passes harness options (--steps N, --pos P, --layers L, --smem BYTES); HARNESS_POSITIONS="60 150 270"
# repeats every run at each decode position (a base run first at each). Output to stdout and, where $OUT
# is set, $OUT/harness.log.
set -eo pipefail
cd "$(dirname "$0")/../.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
B=${HARNESS_BUILD:-/tmp/decode-harness}
mkdir -p "$B"
log=${OUT:-/tmp}/harness.log
builds=(); runs=()
while [ $# -gt 0 ]; do [ "$1" = "--" ] && { shift; break; }; builds+=("$1"); shift; done
runs=("$@")
{
  t0=$(date +%s)
  for b in "${builds[@]}"; do
    n=${b%%:*}; d=${b#*:}
    ( eval "\"$NVCC\" -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v $d -o \"$B/h_$n\" bench/decode-harness/harness.cu" 2> "$B/ptxas_$n.txt" || { echo "build $n failed"; cat "$B/ptxas_$n.txt"; } ) &
  done
  wait
  for b in "${builds[@]}"; do n=${b%%:*}; echo "$n: $(grep -A2 'decode_b1_hd128' "$B/ptxas_$n.txt" | grep -E 'registers|spill' | tr '\n' ' ')"; done
  echo "built in $(( $(date +%s) - t0 )) s"
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.limit --format=csv,noheader
  for pos in ${HARNESS_POSITIONS:-""}; do
    [ -n "$pos" ] && echo "##### decode position $pos"
    for r in "${runs[@]}"; do
      n=${r%%:*}; f=${r#*:}
      echo "=== $n: ${f//,/ }${pos:+ (--pos $pos)}"
      if [ "$n" = base ]; then export HARNESS_LOGITS_OUT=$B/ref.bin; unset HARNESS_LOGITS_REF; else unset HARNESS_LOGITS_OUT; export HARNESS_LOGITS_REF=$B/ref.bin; fi
      "$B/h_$n" ${HARNESS_ARGS:-} ${pos:+--pos $pos} ${f//,/ } || echo "run $n failed"
    done
  done
} 2>&1 | tee "$log"
