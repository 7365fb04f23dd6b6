#!/usr/bin/env python3
"""kt-run against Hugging Face transformers on one machine's CPU, at real
Qwen3-30B-A3B layer sizes (hidden 2048, 32/4 heads of 128, 128 experts of
768, top 8, vocab 151936) with fewer layers, random bf16 weights.

  bench_kt_run_vs_hf.py --kt-run PATH --rules-dir DIR --out DIR [--layers 4]
      [--prompt 512] [--decode 32] [--threads 16]

Writes DIR/model (the checkpoint), prints and saves bench.json:
 - correctness at real sizes: kt-run --dump-logits (f32, reading the bf16
   weights) against HF in fp32 (model.float()) on a 64-token prompt, as
   max |diff| / max |hf|; and kt --dtype bf16 against HF bf16;
 - speed: prefill tokens/s and decode tokens/s of HF bf16 (its own MoE
   loop, torch matmuls on the same cores) and of kt-run with fp32 reference
   experts, --dtype bf16 (packed BF16 kernels) and INT8 experts.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import torch
import transformers


def kt(args, extra, prompt_ids, n_new, logits=None):
    cmd = [args.kt_run, "--model", args.model_dir, "--prompt-ids",
           ",".join(map(str, prompt_ids)), "--max-new-tokens", str(n_new),
           "--ignore-eos", "--print-ids", "--threads", str(args.threads)] + extra
    if logits:
        cmd += ["--dump-logits", logits]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t0
    if p.returncode:
        print(p.stderr, file=sys.stderr)
        raise SystemExit(f"kt-run failed: {' '.join(cmd[:6])}")
    m = re.search(r"prefill (\d+) tokens in ([\d.]+) s \(([\d.]+) tok/s\), decode (\d+) "
                  r"tokens in ([\d.]+) s \(([\d.]+) tok/s\)", p.stderr)
    return {"prefill_tok_s": float(m.group(3)), "decode_tok_s": float(m.group(6)),
            "wall_s_incl_load": round(wall, 2), "ids": p.stdout.split()}


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kt-run", required=True)
    ap.add_argument("--rules-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--decode", type=int, default=32)
    ap.add_argument("--threads", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    args.model_dir = os.path.join(args.out, "model")
    cfg = transformers.Qwen3MoeConfig(
        vocab_size=151936, hidden_size=2048, intermediate_size=6144,
        moe_intermediate_size=768, num_hidden_layers=args.layers,
        num_attention_heads=32, num_key_value_heads=4, head_dim=128,
        num_experts=128, num_experts_per_tok=8, norm_topk_prob=True,
        max_position_embeddings=4096, rope_theta=1e6, rms_norm_eps=1e-6,
        tie_word_embeddings=False)
    t0 = time.time()
    model = transformers.Qwen3MoeForCausalLM(cfg).to(torch.bfloat16).eval()
    with torch.no_grad():  # larger weights: well separated logits
        for n, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.02 if "embed" in n or "lm_head" in n else 0.04)
    model.save_pretrained(args.model_dir)
    res = {"config": {"layers": args.layers, "hidden": 2048, "experts": 128,
                      "moe_intermediate": 768, "top_k": 8, "vocab": 151936,
                      "threads": args.threads, "prompt": args.prompt,
                      "decode": args.decode},
           "make_model_s": round(time.time() - t0, 1),
           "torch": torch.__version__, "transformers": transformers.__version__}
    g = torch.Generator().manual_seed(1)
    short = torch.randint(0, cfg.vocab_size, (64,), generator=g).tolist()
    long = torch.randint(0, cfg.vocab_size, (args.prompt,), generator=g).tolist()

    # Correctness at real sizes. The references are loaded back from the
    # checkpoint: casting the in-memory model with .to() would also round
    # the rotary inv_freq buffer to bf16 (and .float() would not undo it).
    del model
    with torch.no_grad():
        hf = transformers.Qwen3MoeForCausalLM.from_pretrained(
            args.model_dir, dtype=torch.float32).eval()
        hf_f32 = hf(torch.tensor([short])).logits[0].numpy()
        del hf
        model = transformers.Qwen3MoeForCausalLM.from_pretrained(
            args.model_dir, dtype=torch.bfloat16).eval()
        hf_bf16 = model(torch.tensor([short])).logits[0].float().numpy()
    kf = os.path.join(args.out, "kt_f32.npy")
    kb = os.path.join(args.out, "kt_bf16.npy")
    kt(args, [], short, 1, kf)
    kt(args, ["--dtype", "bf16"], short, 1, kb)
    res["max_rel_err_kt_f32_vs_hf_fp32"] = rel(np.load(kf), hf_f32)
    res["max_rel_err_kt_bf16_vs_hf_bf16"] = rel(np.load(kb), hf_bf16)
    res["max_rel_err_hf_bf16_vs_hf_fp32"] = rel(hf_bf16, hf_f32)

    # Speed: HF bf16.
    ids = torch.tensor([long])
    with torch.no_grad():
        model(ids[:, :16])  # warm up
        t0 = time.time()
        model(ids)
        pre = time.time() - t0
        t0 = time.time()
        model.generate(ids, max_new_tokens=args.decode, min_new_tokens=args.decode,
                       do_sample=False)
        gen = time.time() - t0
    res["hf_bf16"] = {"prefill_tok_s": args.prompt / pre,
                      "decode_tok_s": (args.decode - 1) / max(gen - pre, 1e-9)}
    # Speed: kt-run.
    int8 = os.path.join(args.rules_dir, "qwen3-moe-cpu-int8.yaml")
    for name, extra in [("kt_f32_reference", []), ("kt_bf16", ["--dtype", "bf16"]),
                        ("kt_int8_experts", ["--rules", int8])]:
        r = kt(args, extra, long, args.decode)
        r.pop("ids")
        res[name] = r
    print(json.dumps(res, indent=1))
    json.dump(res, open(os.path.join(args.out, "bench.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
