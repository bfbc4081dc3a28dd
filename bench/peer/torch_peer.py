#!/usr/bin/env python3
"""PyTorch peer for GpuOps' benchmarks, run in the same session on the GPU host.

Same method as GpuOps: warm-up, CUDA events around each run, median of many runs, random inputs (never zeros)
rotated between 2 sets, copy bandwidth counting bytes read + written, GEMM TFLOP/s counting 2*M*N*K.
Prints one JSON line: {"env": {...}, "results": {key: {"name", "value", "unit", "median_ms", ...}}}.
"""
import argparse, json, statistics, sys, time
import torch


def timed(fn, reps, warmup=5):
    for i in range(warmup):
        fn(i)
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    stops = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for i in range(reps):
        starts[i].record()
        fn(warmup + i)
        stops[i].record()
    torch.cuda.synchronize()
    ms = sorted(s.elapsed_time(e) for s, e in zip(starts, stops))
    return statistics.median(ms), ms[0], ms[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", type=int, default=0)
    ap.add_argument("--copy-bytes", type=int, default=1 << 30)
    ap.add_argument("--gemm", type=int, default=8192)
    ap.add_argument("--reps", type=int, default=50)
    a = ap.parse_args()
    torch.cuda.set_device(a.device)
    dev = torch.device("cuda", a.device)
    out = {}

    def put(key, name, value, unit, t):
        out[key] = {"name": name, "value": value, "unit": unit, "median_ms": t[0], "min_ms": t[1], "max_ms": t[2]}
        print(f"peer {key}: {value:.2f} {unit} (median {t[0]:.4f} ms)", file=sys.stderr)

    def attempt(key, f):
        try:
            f()
        except Exception as e:  # a peer that cannot run one item still reports the others
            out[key] = {"name": f"failed: {type(e).__name__}: {str(e)[:200]}", "value": None}
            print(f"peer {key} failed: {e}", file=sys.stderr)

    n = a.copy_bytes

    def copy():
        bufs = [torch.randint(0, 255, (n,), dtype=torch.uint8, device=dev) for _ in range(4)]
        t = timed(lambda i: bufs[2 * (i % 2) + 1].copy_(bufs[2 * (i % 2)]), a.reps)
        put("copy", "torch Tensor.copy_ (uint8, device to device)", 2 * n / (t[0] * 1e-3) / 1e9, "GB/s", t)
        del bufs

    def h2d():
        hb = 256 << 20
        host = torch.randint(0, 255, (hb,), dtype=torch.uint8).pin_memory()
        d = torch.empty(hb, dtype=torch.uint8, device=dev)
        t = timed(lambda i: d.copy_(host, non_blocking=True), 20)
        put("h2d_pinned", "torch copy_ pinned host to device", hb / (t[0] * 1e-3) / 1e9, "GB/s", t)
        t = timed(lambda i: host.copy_(d, non_blocking=True), 20)
        put("d2h_pinned", "torch copy_ device to pinned host", hb / (t[0] * 1e-3) / 1e9, "GB/s", t)

    def idle():
        # GEMMs run into the power limit: every GEMM measurement (ours too) starts after 1 s idle, so both start
        # from the same power and clock state
        torch.cuda.synchronize()
        time.sleep(1.0)

    s = a.gemm
    flops = 2.0 * s * s * s
    greps = min(a.reps, 30)

    def gemm(key, dtype, name, tf32=False):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        # uniform in [-1, 1) computed in float32, then rounded once: full-entropy mantissas (rand().to(bf16) * 2 - 1
        # in bf16 arithmetic leaves about 256 distinct values with trailing zero bits, which draw less power and
        # run faster than real data, like zeros do)
        A = [(torch.rand(s, s, device=dev, dtype=torch.float32) * 2 - 1).to(dtype) for _ in range(2)]
        B = [(torch.rand(s, s, device=dev, dtype=torch.float32) * 2 - 1).to(dtype) for _ in range(2)]
        idle()
        C = torch.empty(s, s, device=dev, dtype=dtype)
        t = timed(lambda i: torch.matmul(A[i % 2], B[i % 2], out=C), greps)
        put(key, name, flops / (t[0] * 1e-3) / 1e12, "TFLOP/s", t)
        torch.backends.cuda.matmul.allow_tf32 = False

    def fp8():
        A = [(torch.rand(s, s, device=dev) * 2 - 1).to(torch.float8_e4m3fn) for _ in range(2)]
        B = [(torch.rand(s, s, device=dev) * 2 - 1).to(torch.float8_e4m3fn) for _ in range(2)]
        one = torch.ones((), device=dev, dtype=torch.float32)
        idle()
        t = timed(lambda i: torch._scaled_mm(A[i % 2], B[i % 2].t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16), greps)
        put("gemm_fp8", "torch._scaled_mm e4m3 -> bf16", flops / (t[0] * 1e-3) / 1e12, "TFLOP/s", t)

    def i8():
        A = [torch.randint(-100, 100, (s, s), device=dev, dtype=torch.int8) for _ in range(2)]
        B = [torch.randint(-100, 100, (s, s), device=dev, dtype=torch.int8) for _ in range(2)]
        idle()
        t = timed(lambda i: torch._int_mm(A[i % 2], B[i % 2].t()), greps)
        put("gemm_i8", "torch._int_mm int8 -> int32", flops / (t[0] * 1e-3) / 1e12, "TOP/s", t)

    def graph():
        x = torch.randn(1, device=dev)
        g = torch.cuda.CUDAGraph()
        s_ = torch.cuda.Stream()
        with torch.cuda.stream(s_):
            for _ in range(3):
                x.add_(1)
        torch.cuda.synchronize()
        with torch.cuda.graph(g):
            for _ in range(1000):
                x.add_(1)
        t = timed(lambda i: g.replay(), 20, 2)
        put("graph_replay", "torch CUDAGraph replay of 1000 add_ kernels (per kernel)", t[0] * 1000 / 1000, "µs", t)

    attempt("copy", copy)
    attempt("h2d_pinned", h2d)
    attempt("gemm_bf16", lambda: gemm("gemm_bf16", torch.bfloat16, "torch.matmul bf16"))
    attempt("gemm_f16", lambda: gemm("gemm_f16", torch.float16, "torch.matmul f16"))
    attempt("gemm_tf32", lambda: gemm("gemm_tf32", torch.float32, "torch.matmul f32 with allow_tf32", tf32=True))
    attempt("gemm_fp8", fp8)
    attempt("gemm_i8", i8)
    attempt("graph_replay", graph)
    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": torch.cuda.get_device_name(a.device),
           "cublas_workspace_config": __import__("os").environ.get("CUBLAS_WORKSPACE_CONFIG")}
    print(json.dumps({"env": env, "results": out}))


if __name__ == "__main__":
    main()
