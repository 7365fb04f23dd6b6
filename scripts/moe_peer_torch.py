#!/usr/bin/env python3
"""PyTorch peer of bench/bench_moe.cpp: the same MoE layer in bf16 on the CPU.

Shape as the C++ benchmark: H 2048, I 768, top 8, bf16 activations; 32
experts x 4 layers used in rotation (`moe`), and the model's 128 experts in
one layer (`qwen3_30b_a3b`). Experts run the way Hugging Face's
Qwen3MoeSparseMoeBlock runs them: tokens grouped per expert (torch.where on
the one-hot routing mask), gate/up/down as F.linear on bf16 weights in the
nn.Linear layout, silu(gate) * up, weighted, index_add_ into the output.

Prints one JSON object: {"torch": version, "threads": n, "results": [...]}
with ms per call, GBps (bf16 weights of the routed experts + activations)
and TFLOPS (6 * H * I per routed pair) per case.

Environment: KT_PEER_THREADS (default 16), KT_PEER_MIN_TIME (seconds per
case, default 0.2), KT_PEER_TOKENS (default 1,8,64,512,2048).
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

H, I, TOPK = 2048, 768, 8


def make_layers(num_experts, num_layers, gen):
    layers = []
    for _ in range(num_layers):
        s_h, s_i = 1 / math.sqrt(H), 1 / math.sqrt(I)
        gate = (torch.randn(num_experts, I, H, generator=gen) * s_h).bfloat16()
        up = (torch.randn(num_experts, I, H, generator=gen) * s_h).bfloat16()
        down = (torch.randn(num_experts, H, I, generator=gen) * s_i).bfloat16()
        layers.append((gate, up, down))
    return layers


def moe_forward(x, topk_ids, topk_w, layer, num_experts):
    gate, up, down = layer
    out = torch.zeros_like(x)
    mask = F.one_hot(topk_ids, num_classes=num_experts).permute(2, 1, 0)
    hit = torch.greater(mask.sum(dim=(-1, -2)), 0).nonzero()
    for e in hit.view(-1).tolist():
        slot, tok = torch.where(mask[e])
        xe = x[tok]
        h = F.silu(F.linear(xe, gate[e])) * F.linear(xe, up[e])
        y = F.linear(h, down[e]) * topk_w[tok, slot, None]
        out.index_add_(0, tok, y.to(x.dtype))
    return out


def routing(tokens, num_experts, gen):
    scores = torch.rand(tokens, num_experts, generator=gen)
    ids = scores.topk(TOPK, dim=-1).indices
    w = torch.full((tokens, TOPK), 1.0 / TOPK, dtype=torch.bfloat16)
    return ids, w


def time_case(name, layers, num_experts, tokens, min_time, gen):
    x = torch.randn(tokens, H, generator=gen).bfloat16()
    ids, w = routing(tokens, num_experts, gen)
    pairs = tokens * TOPK
    distinct = ids.unique().numel()
    bytes_read = distinct * 3 * H * I * 2 + tokens * (H * 2 + TOPK * 12)
    flops = 6.0 * H * I * pairs
    with torch.inference_mode():
        moe_forward(x, ids, w, layers[0], num_experts)  # warm-up
        n, i, t0 = 0, 1, time.perf_counter()
        while True:
            moe_forward(x, ids, w, layers[i % len(layers)], num_experts)
            i += 1
            n += 1
            el = time.perf_counter() - t0
            if el >= min_time and n >= 2:
                break
    t = el / n
    return {"name": name, "tokens": tokens, "experts": num_experts,
            "layers": len(layers), "iterations": n, "ms": t * 1e3,
            "GBps": bytes_read / t / 1e9, "TFLOPS": flops / t / 1e12}


def main():
    threads = int(os.environ.get("KT_PEER_THREADS", "16"))
    min_time = float(os.environ.get("KT_PEER_MIN_TIME", "0.2"))
    tokens = [int(t) for t in
              os.environ.get("KT_PEER_TOKENS", "1,8,64,512,2048").split(",")]
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    results = []
    cases = [("moe/torch_bf16", 32, 4, tokens),
             ("qwen3_30b_a3b/torch_bf16", 128, 1,
              [t for t in tokens if t != 8])]
    for prefix, experts, nl, toks in cases:
        layers = make_layers(experts, nl, gen)
        for t in toks:
            r = time_case(f"{prefix}/tokens:{t}", layers, experts, t,
                          min_time, gen)
            print(json.dumps(r), file=sys.stderr, flush=True)
            results.append(r)
        del layers
    cap = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()
    print(json.dumps({"torch": torch.__version__, "threads": threads,
                      "cpu_capability": cap, "results": results}, indent=1))


if __name__ == "__main__":
    main()
