"""Peer for `GpuOps.Bench inference`: safetensors.torch.load_file(..., device="cuda") load speed and transformers
(eager PyTorch, no torch.compile, default attention) prefill / generate speed on the SAME checkpoint directory.
Usage: python3 hf_inference_peer.py MODEL_DIR [--batches 1,4,16] [--new 64]. Prints one JSON line last."""
import glob, json, os, sys, time
import torch

d = sys.argv[1]
args = sys.argv[2:]
batches = [int(x) for x in (args[args.index("--batches") + 1] if "--batches" in args else "1,4,16").split(",")]
new = int(args[args.index("--new") + 1]) if "--new" in args else 64
res = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
torch.cuda.init()
torch.empty(1, device="cuda")

# 1) safetensors load_file to the GPU (page cache warm: the files were just written)
from safetensors.torch import load_file
files = sorted(glob.glob(os.path.join(d, "*.safetensors")))
nbytes = sum(os.path.getsize(f) for f in files)
torch.cuda.synchronize()
t = time.perf_counter()
sd = {}
for f in files:
    sd.update(load_file(f, device="cuda"))
torch.cuda.synchronize()
dt = time.perf_counter() - t
res["safetensors_load_s"] = dt
res["safetensors_load_GBps"] = nbytes / dt / 1e9
res["file_bytes"] = nbytes
del sd
torch.cuda.empty_cache()

# 2) transformers
import transformers
from transformers import AutoModelForCausalLM
res["transformers"] = transformers.__version__
t = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16, device_map="cuda")
model.eval()
torch.cuda.synchronize()
res["from_pretrained_s"] = time.perf_counter() - t
res["attn_implementation"] = getattr(model.config, "_attn_implementation", None)
V = model.config.vocab_size
g = torch.Generator(device="cpu").manual_seed(0)

def ids(b, n):
    return torch.randint(0, V, (b, n), generator=g).cuda()

with torch.no_grad():
    # prefill 2048
    x = ids(1, 2048)
    model(x, use_cache=False)
    torch.cuda.synchronize()
    ts = []
    for _ in range(3):
        t = time.perf_counter(); model(x, use_cache=False); torch.cuda.synchronize(); ts.append(time.perf_counter() - t)
    ts.sort()
    res["prefill_2048_s"] = ts[1]
    res["prefill_2048_tok_s"] = 2048 / ts[1]

    def gen(b, plen, n):
        x = ids(b, plen)
        torch.cuda.synchronize()
        t = time.perf_counter()
        model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()
        return time.perf_counter() - t

    gen(1, 16, 4)
    ttft = sorted(gen(1, 128, 1) for _ in range(3))[1]
    res["ttft_128_ms"] = ttft * 1000
    for b in batches:
        t1 = gen(b, 16, 1)
        tn = gen(b, 16, new + 1)
        res[f"decode_b{b}_tok_s"] = b * new / (tn - t1)
res["peer"] = f"transformers {transformers.__version__} eager generate (bf16, attention {res['attn_implementation']}, no torch.compile)"
print(json.dumps(res))
