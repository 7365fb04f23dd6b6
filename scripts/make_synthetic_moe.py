#!/usr/bin/env python3
"""Writes a Qwen3-MoE-shaped checkpoint with random bf16 weights, for
measuring kt-quant's time and memory on real layer sizes (docs/kt-quant.md).
Standard library only (no numpy / torch).

  make_synthetic_moe.py OUT_DIR [--layers 4] [--experts 128] [--hidden 2048]
      [--moe-intermediate 768] [--vocab 1024] [--seed 0]

The defaults are Qwen3-30B-A3B's expert shapes (128 experts of 768, hidden
2048, 32/4 heads of 128) with few layers and a small vocabulary. One
safetensors shard per layer plus model.safetensors.index.json, as on the
Hub. Values are N(0, 0.02) draws from a 1M-value pool, each tensor starting
at its own offset (enough for timing and memory, not for a useful model).
"""
import argparse
import json
import os
import random
import struct
import sys


def bf16_pool(n, seed):
    rng = random.Random(seed)
    out = bytearray(2 * n)
    for i in range(n):
        bits = struct.unpack("<I", struct.pack("<f", rng.gauss(0.0, 0.02)))[0]
        bits += 0x7FFF + ((bits >> 16) & 1)  # round to nearest even
        struct.pack_into("<H", out, 2 * i, (bits >> 16) & 0xFFFF)
    return bytes(out)


def layer_tensors(i, a):
    p = f"model.layers.{i}."
    head, nh, nkv = 128, 32, 4
    t = [
        (p + "input_layernorm.weight", [a.hidden]),
        (p + "post_attention_layernorm.weight", [a.hidden]),
        (p + "self_attn.q_proj.weight", [nh * head, a.hidden]),
        (p + "self_attn.k_proj.weight", [nkv * head, a.hidden]),
        (p + "self_attn.v_proj.weight", [nkv * head, a.hidden]),
        (p + "self_attn.o_proj.weight", [a.hidden, nh * head]),
        (p + "self_attn.q_norm.weight", [head]),
        (p + "self_attn.k_norm.weight", [head]),
        (p + "mlp.gate.weight", [a.experts, a.hidden]),
    ]
    for e in range(a.experts):
        q = f"{p}mlp.experts.{e}."
        t += [
            (q + "gate_proj.weight", [a.moe_intermediate, a.hidden]),
            (q + "up_proj.weight", [a.moe_intermediate, a.hidden]),
            (q + "down_proj.weight", [a.hidden, a.moe_intermediate]),
        ]
    return t


def write_shard(path, tensors, pool, cursor):
    header, offset = {}, 0
    for name, shape in tensors:
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": shape,
                        "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape in tensors:
            n = header[name]["data_offsets"][1] - header[name]["data_offsets"][0]
            start = cursor[0] % (len(pool) // 2) & ~1
            cursor[0] += 7919 * 2
            while n:
                chunk = pool[start:start + min(n, len(pool) // 2)]
                f.write(chunk)
                n -= len(chunk)
                start = 0
    return header


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--experts", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--moe-intermediate", type=int, default=768)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    pool = bf16_pool(1 << 20, a.seed)
    pool += pool  # slices of up to half its length never wrap
    cursor = [0]
    n = a.layers + 1
    weight_map = {}
    shards = [[(f"model.embed_tokens.weight", [a.vocab, a.hidden])]]
    shards += [layer_tensors(i, a) for i in range(a.layers)]
    shards[-1] += [("model.norm.weight", [a.hidden]),
                   ("lm_head.weight", [a.vocab, a.hidden])]
    total = 0
    for k, tensors in enumerate(shards):
        name = f"model-{k + 1:05d}-of-{n:05d}.safetensors"
        header = write_shard(os.path.join(a.out, name), tensors, pool, cursor)
        for t in header:
            weight_map[t] = name
        total += os.path.getsize(os.path.join(a.out, name))
        print(f"wrote {name}", file=sys.stderr)
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total},
                   "weight_map": weight_map}, f, indent=1)
    config = {
        "architectures": ["Qwen3MoeForCausalLM"],
        "model_type": "qwen3_moe",
        "hidden_size": a.hidden,
        "intermediate_size": 6144,
        "moe_intermediate_size": a.moe_intermediate,
        "num_hidden_layers": a.layers,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "head_dim": 128,
        "num_experts": a.experts,
        "num_experts_per_tok": 8,
        "norm_topk_prob": True,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
        "vocab_size": a.vocab,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "hidden_act": "silu",
        "attention_bias": False,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "bos_token_id": 0,
        "eos_token_id": 1,
    }
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    print(f"{a.out}: {a.layers} layers, {total / 2**30:.2f} GiB", file=sys.stderr)


if __name__ == "__main__":
    main()
