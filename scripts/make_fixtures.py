#!/usr/bin/env python3
"""Generate the tiny Hugging Face model fixtures under test/fixtures/models/.

Every supported architecture gets one directory with a random tiny model (hidden 64, 2-3
layers, 4 heads, 4-8 experts, vocab = its tokenizer's size), written the way a real checkpoint
on the Hub looks, plus reference outputs computed by Hugging Face transformers from the SAVED
directory (reloaded with ``from_pretrained``), for the importer and numerics tests:

  config.json, model.safetensors (or model-0000N-of-0000M.safetensors + index),
  generation_config.json, tokenizer.json, tokenizer_config.json (with a chat_template),
  reference.json   prompt, prompt_ids, 24 greedy ids (HF generate, do_sample=False),
                   versions, tensor naming style, config style, load report, chat example
  logits.npy       float32 [len(prompt_ids), vocab]: HF logits of the prompt
  tokenizer_cases.json  [{"text", "ids", "tokens"}]: tokenizer(text).input_ids (with the
                   post-processor's special tokens) for whitespace, digits, contractions,
                   accents, CJK, emoji, inline special tokens and the empty string
  modules.json     [[dotted_name, python class], ...] for model.named_modules() of the
                   reloaded model (transformers' own module tree)

and models/MANIFEST.json with the versions and per-model status.

Tokenizers cannot be downloaded, so they are trained here, deterministically, by a small
pure-Python BPE trainer on the multilingual text embedded below, and then assembled with the
`tokenizers` library to look like the family's real tokenizer.json (byte-level BPE with the
Qwen2 / Llama-3 split regex; a sentencepiece-style Metaspace + byte_fallback BPE for Mixtral).

Everything runs on the CPU in float32 with fixed seeds; two runs on two fresh machines gave
byte-identical files.  The committed fixtures were made with transformers 5.17.0, torch
2.11.0+cu130, tokenizers 0.23.2 (the developer machines have none of them), on the lent GPU
machine (its CPU only), with the device tool's command, from the repo root:

  export PYTHONUNBUFFERED=1 CUDA_VISIBLE_DEVICES=""
  python3 scripts/make_fixtures.py --out /tmp/fx > $OUT/log.txt 2>&1
  tar czf $OUT/fixtures.tgz -C /tmp/fx models

then, here: `tar xzf fixtures.tgz -C test/fixtures` (gives test/fixtures/models/<name>/).
Anywhere with torch + transformers>=5 + tokenizers + safetensors + numpy + regex:

  python3 scripts/make_fixtures.py --out test/fixtures [--only NAME[,NAME]]

The BPE training part needs only `regex`: `python3 scripts/make_fixtures.py --selftest`.
"""

import argparse
import collections
import glob
import json
import math
import os
import re
import shutil
import sys
import time
import traceback

import regex as re2  # \p{L} support; available with transformers

# ----------------------------------------------------------------------------------------------
# Training text (a few KB, multilingual: English, code, digits, accents, CJK, emoji)
# ----------------------------------------------------------------------------------------------
CORPUS = r"""
The quick brown fox jumps over the lazy dog. The dog didn't care; it's a lazy dog, and we'll
let it sleep. I'm sure they're fine, you've seen them before, and she'd agree.
Hello world! Hello, World. HELLO WORLD? hello   world		tab	separated
Mixture-of-Experts models route every token to a few experts out of many. A router (or gate)
scores the experts, keeps the top-k, and mixes their outputs with the normalised weights.
Shared experts are always on. Multi-head latent attention compresses keys and values into a
small latent vector; rotary position embeddings (RoPE, YaRN, llama3 scaling) rotate queries and
keys. The model has 2 or 3 layers, a hidden size of 64, 4 heads and 8 experts.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 42 100 256 1024 2048 4096 65536 3.14159 2.71828 -17
1,000,000 and 12345 6789 0x7f 1e-6 2025-11-17 12:30:45 +49 30 1234567 #42 100% $19.99
def forward(self, hidden_states, attention_mask=None):
    residual = hidden_states
    hidden_states = self.input_layernorm(hidden_states)
    for i in range(len(self.layers)):
        x = self.layers[i](x, mask=attention_mask)  # comment
    return {"logits": logits, "loss": None}
int main(int argc, char **argv) { std::vector<float> v(64, 0.0f); return v.size() > 0 ? 0 : 1; }
if (a && b || !c) { x += y * 2; } else { y -= x / 3; } // C++ and JSON: {"key": [1, 2, 3]}
Français : le café est très bon, la crème brûlée aussi. Où est la gare ? À bientôt, garçon.
Deutsch: Grüße aus München! Die Straße ist schön, über den Fluß. Ärger, Öl, Übung.
Español: ¿Dónde está la biblioteca? ¡Mañana será un día fantástico! El niño comió piña.
Português: não, coração, informação. Naïve résumé façade coöperate jalapeño São Paulo.
中文：你好，世界！今天天气很好。我们一起学习机器学习和人工智能。专家混合模型。
日本語：こんにちは世界。東京は大きい都市です。ありがとうございます。カタカナとひらがな。
한국어: 안녕하세요 세계. 감사합니다.
Русский: Привет, мир! Спасибо. Ελληνικά: Γειά σου Κόσμε. العربية: مرحبا بالعالم
Emoji: 🙂 😀 😂 👍 👍🏽 ❤️ 🚀 🎉 ✅ 🔥 🤖 — ok 👋 hi 🙂🙂 👍👍
Whitespace:  two  spaces,   three   spaces,	tab,		two tabs,
new lines

and blank lines.
    indented code line
        more indented
It's the end of the text, isn't it? Yes, it is. You'll see. We're done. They'd know.
"""

# Byte-level split patterns (Qwen2 / DeepSeek-like and Llama-3-like)
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# ----------------------------------------------------------------------------------------------
# Tokenizer families
# ----------------------------------------------------------------------------------------------
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

DEEPSEEK_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<｜Assistant｜>' }}{% endif %}")

LLAMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}")

MISTRAL_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% endif %}{% endfor %}")

TOKENIZERS = {
    # Qwen2 / Qwen3: byte-level BPE, NFC, specials appended at the end, no BOS.
    "qwen": dict(kind="bytelevel", pattern=QWEN2_PATTERN, vocab_target=640, nfc=True,
                 front_specials=[], end_specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                 post="bytelevel", bos=None, eos="<|endoftext|>", pad="<|endoftext|>", unk=None,
                 chat_template=CHATML_TEMPLATE,
                 special_case="<|im_start|>user hi<|im_end|>\n<|im_start|>assistant\n"),
    # DeepSeek V2/V3: byte-level BPE, BOS/EOS at ids 0/1, chat specials at the end, BOS added.
    "deepseek": dict(kind="bytelevel", pattern=QWEN2_PATTERN, vocab_target=704, nfc=False,
                     front_specials=["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"],
                     end_specials=["<｜User｜>", "<｜Assistant｜>"],
                     post="bos", bos="<｜begin▁of▁sentence｜>", eos="<｜end▁of▁sentence｜>",
                     pad="<｜end▁of▁sentence｜>", unk=None, chat_template=DEEPSEEK_TEMPLATE,
                     special_case="<｜User｜>hi<｜Assistant｜>ok<｜end▁of▁sentence｜>"),
    # Llama 3: byte-level BPE, digits in groups of 3, specials at the end, BOS added.
    "llama3": dict(kind="bytelevel", pattern=LLAMA3_PATTERN, vocab_target=600, nfc=False,
                   front_specials=[],
                   end_specials=["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                 "<|end_header_id|>", "<|eot_id|>"],
                   post="bytelevel+bos", bos="<|begin_of_text|>", eos="<|end_of_text|>",
                   pad="<|end_of_text|>", unk=None, chat_template=LLAMA3_TEMPLATE,
                   special_case="<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"),
    # Mistral / Mixtral: sentencepiece-style BPE (Metaspace, byte_fallback, <unk>), <s> added.
    "mistral": dict(kind="spm", vocab_target=640, front_specials=["<unk>", "<s>", "</s>"],
                    end_specials=[], post="bos", bos="<s>", eos="</s>", pad=None, unk="<unk>",
                    chat_template=MISTRAL_TEMPLATE, special_case="<s>[INST] hi [/INST]ok</s>"),
}

TOKENIZER_CASE_TEXTS = [
    "a  b\t\tc\n\n d",
    "12345 6789",
    "I'm don't we'll",
    "café naïve",
    "你好世界",
    "🙂👍🏽",
    None,  # the family's inline special tokens
    "",
]

PROMPT = "Hello world! The quick brown fox jumps over the lazy dog. 12345 café 你好 🙂"
CHAT_MESSAGES = [{"role": "user", "content": "hi"},
                 {"role": "assistant", "content": "hello"},
                 {"role": "user", "content": "What is 2+2?"}]
N_GREEDY = 24

# ----------------------------------------------------------------------------------------------
# Pure-Python deterministic BPE trainer
# ----------------------------------------------------------------------------------------------


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode char map."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def train_bpe(word_counts, n_merges):
    """word_counts: {tuple(symbols): count}. Returns the merges, most frequent pair first,
    ties broken by the pair's lexicographic order, so the result is deterministic."""
    words = [(list(w), c) for w, c in sorted(word_counts.items())]
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for syms, c in words:
            for i in range(len(syms) - 1):
                pairs[(syms[i], syms[i + 1])] += c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        a, b = best
        for syms, _ in words:
            i = 0
            while i < len(syms) - 1:
                if syms[i] == a and syms[i + 1] == b:
                    syms[i:i + 2] = [a + b]
                i += 1
    return merges


def bytelevel_words(text, pattern):
    b2u = bytes_to_unicode()
    counts = collections.Counter()
    for piece in re2.findall(pattern, text):
        counts[tuple(b2u[b] for b in piece.encode("utf-8"))] += 1
    return counts


def build_bytelevel_vocab(spec, text):
    b2u = bytes_to_unicode()
    vocab = {}
    for s in spec["front_specials"]:
        vocab[s] = len(vocab)
    for b in range(256):
        vocab[b2u[b]] = len(vocab)
    n_merges = spec["vocab_target"] - len(vocab) - len(spec["end_specials"])
    merges = train_bpe(bytelevel_words(text, spec["pattern"]), n_merges)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    return vocab, merges


SPM_SPACE = "\u2581"


def build_spm_vocab(spec, text):
    """Sentencepiece-style: '▁' for spaces; printable ASCII and the chars seen >= 3 times form
    the alphabet (others, and '\\n'/'\\t', fall back to <0xNN> byte tokens); merges never
    cross a word start."""
    lines = [SPM_SPACE + ln.replace(" ", SPM_SPACE) for ln in text.split("\n") if ln.strip()]
    char_counts = collections.Counter(ch for ln in lines for ch in ln)
    for c in range(0x21, 0x7F):
        char_counts[chr(c)] += 0
    alphabet = sorted((ch for ch, c in char_counts.items()
                       if (c >= 3 or " " < ch <= "~") and ch not in "\n\t\r"),
                      key=lambda ch: (-char_counts[ch], ch))
    alpha = set(alphabet)
    counts = collections.Counter()
    for ln in lines:
        for w in re2.findall(SPM_SPACE + "*[^" + SPM_SPACE + "]+|" + SPM_SPACE + "+", ln):
            run = []
            for ch in w:  # split words at characters outside the alphabet
                if ch in alpha:
                    run.append(ch)
                elif run:
                    counts[tuple(run)] += 1
                    run = []
            if run:
                counts[tuple(run)] += 1
    vocab = {}
    for s in spec["front_specials"]:
        vocab[s] = len(vocab)
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for ch in alphabet:
        vocab.setdefault(ch, len(vocab))
    n_merges = spec["vocab_target"] - len(vocab) - len(spec["end_specials"])
    merges = train_bpe(counts, n_merges)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    return vocab, merges


def selftest():
    for fam, spec in TOKENIZERS.items():
        t0 = time.time()
        if spec["kind"] == "bytelevel":
            vocab, merges = build_bytelevel_vocab(spec, CORPUS)
        else:
            vocab, merges = build_spm_vocab(spec, CORPUS)
        ids = sorted(vocab.values())
        assert ids == list(range(len(ids))), fam
        for a, b in merges:
            assert a in vocab and b in vocab and a + b in vocab, (fam, a, b)
        print("%-9s vocab %d (+%d end specials)  merges %d  %.2fs  last merges %s" % (
            fam, len(vocab), len(spec["end_specials"]), len(merges), time.time() - t0,
            merges[-3:]))
    print("selftest ok")


# ----------------------------------------------------------------------------------------------
# Tokenizer assembly (needs `tokenizers` and `transformers`)
# ----------------------------------------------------------------------------------------------


def build_tokenizer(fam):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers, processors

    spec = TOKENIZERS[fam]
    if spec["kind"] == "bytelevel":
        vocab, merges = build_bytelevel_vocab(spec, CORPUS)
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False,
                                   byte_fallback=False))
        if spec["nfc"]:
            tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(spec["pattern"]), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        tok.decoder = decoders.ByteLevel()
    else:
        vocab, merges = build_spm_vocab(spec, CORPUS)
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=spec["unk"],
                                   fuse_unk=True, byte_fallback=True))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPM_SPACE,
                                                     prepend_scheme="first", split=False)
        tok.decoder = decoders.Sequence([decoders.Replace(SPM_SPACE, " "), decoders.ByteFallback(),
                                         decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    specials = spec["front_specials"] + spec["end_specials"]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])

    def bytelevel_post():
        try:
            return processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                        use_regex=False)
        except TypeError:
            return processors.ByteLevel(trim_offsets=False)

    def bos_post():
        bos = spec["bos"]
        return processors.TemplateProcessing(single=bos + " $A", pair=bos + " $A " + bos + " $B",
                                             special_tokens=[(bos, tok.token_to_id(bos))])

    if spec["post"] == "bytelevel":
        tok.post_processor = bytelevel_post()
    elif spec["post"] == "bos":
        tok.post_processor = bos_post()
    else:
        tok.post_processor = processors.Sequence([bytelevel_post(), bos_post()])
    return tok


def save_tokenizer(fam, tok, d):
    from transformers import PreTrainedTokenizerFast

    spec = TOKENIZERS[fam]
    kw = {k + "_token": spec[k] for k in ("bos", "eos", "pad", "unk") if spec[k] is not None}
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512,
                                 clean_up_tokenization_spaces=False, **kw)
    hf.chat_template = spec["chat_template"]
    hf.save_pretrained(d)
    # Hub checkpoints keep the template inside tokenizer_config.json: do the same.
    cfg_path = os.path.join(d, "tokenizer_config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    if not cfg.get("chat_template"):
        cfg["chat_template"] = spec["chat_template"]
    for extra in ("chat_template.jinja", "chat_template.json"):
        p = os.path.join(d, extra)
        if os.path.exists(p):
            os.remove(p)
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
        f.write("\n")


def load_hf_tokenizer(d, notes):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast
    try:
        return AutoTokenizer.from_pretrained(d)
    except Exception as e:  # noqa: BLE001
        notes.append("AutoTokenizer failed (%s: %s); used PreTrainedTokenizerFast"
                     % (type(e).__name__, e))
        return PreTrainedTokenizerFast.from_pretrained(d)


def tokenizer_cases(fam, hf_tok, d, notes):
    from tokenizers import Tokenizer
    raw = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    out = []
    for text in TOKENIZER_CASE_TEXTS:
        if text is None:
            text = TOKENIZERS[fam]["special_case"]
        ids = list(hf_tok(text).input_ids)
        case = {"text": text, "ids": ids, "tokens": hf_tok.convert_ids_to_tokens(ids),
                "decoded": hf_tok.decode(ids, skip_special_tokens=False)}
        raw_ids = raw.encode(text).ids
        if list(raw_ids) != ids:
            case["raw_tokenizers_ids"] = list(raw_ids)
            notes.append("tokenizer.json (tokenizers lib) and the HF tokenizer disagree on %r"
                         % text)
        out.append(case)
    return out


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------
H = 64


def rope(theta, **scaling):
    d = {"rope_type": scaling.pop("rope_type", "default"), "rope_theta": float(theta)}
    d.update(scaling)
    return d


YARN_V2 = dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=128, mscale=0.707,
               mscale_all_dim=0.707, beta_fast=32.0, beta_slow=1.0)
YARN_V3 = dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=128, mscale=1.0,
               mscale_all_dim=1.0, beta_fast=32.0, beta_slow=1.0)

# name -> (config class, tokenizer family, seed, config kwargs, save mode, extra)
MODELS = collections.OrderedDict([
    ("deepseek-v2", dict(
        cls="DeepseekV2Config", tok="deepseek", seed=1001, save="per_expert",
        cfg=dict(hidden_size=H, intermediate_size=80, moe_intermediate_size=24,
                 num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
                 q_lora_rank=None, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8,
                 v_head_dim=16, n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2,
                 first_k_dense_replace=1, topk_method="group_limited_greedy", n_group=2,
                 topk_group=1, routed_scaling_factor=1.5, norm_topk_prob=False,
                 max_position_embeddings=512, rms_norm_eps=1e-6,
                 rope_parameters=rope(10000.0, **YARN_V2), tie_word_embeddings=False))),
    ("deepseek-v3", dict(
        cls="DeepseekV3Config", tok="deepseek", seed=1002, save="deepseek_hub",
        cfg=dict(hidden_size=H, intermediate_size=80, moe_intermediate_size=20,
                 num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
                 q_lora_rank=24, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8,
                 v_head_dim=16, n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2,
                 first_k_dense_replace=1, n_group=2, topk_group=1, routed_scaling_factor=2.5,
                 norm_topk_prob=True, max_position_embeddings=512, rms_norm_eps=1e-6,
                 rope_parameters=rope(10000.0, **YARN_V3), tie_word_embeddings=False))),
    ("qwen2-moe", dict(
        cls="Qwen2MoeConfig", tok="qwen", seed=1003, save="per_expert",
        cfg=dict(hidden_size=H, intermediate_size=80, moe_intermediate_size=24,
                 shared_expert_intermediate_size=40, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, num_experts=8,
                 num_experts_per_tok=2, norm_topk_prob=False, decoder_sparse_step=1,
                 mlp_only_layers=[], max_position_embeddings=512, rms_norm_eps=1e-6,
                 use_sliding_window=False, rope_parameters=rope(1000000.0),
                 tie_word_embeddings=False))),
    ("qwen3-moe", dict(
        cls="Qwen3MoeConfig", tok="qwen", seed=1004, save="per_expert", also_fused="qwen3-moe-fused",
        cfg=dict(hidden_size=H, intermediate_size=80, moe_intermediate_size=24,
                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=24,
                 num_experts=8, num_experts_per_tok=2, norm_topk_prob=True,
                 decoder_sparse_step=1, mlp_only_layers=[], max_position_embeddings=512,
                 rms_norm_eps=1e-6, use_sliding_window=False, rope_parameters=rope(1000000.0),
                 tie_word_embeddings=False))),
    ("mixtral", dict(
        cls="MixtralConfig", tok="mistral", seed=1006, save="mixtral_hub",
        cfg=dict(hidden_size=H, intermediate_size=40, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=24, num_local_experts=4,
                 num_experts_per_tok=2, max_position_embeddings=512, rms_norm_eps=1e-5,
                 sliding_window=None, rope_parameters=rope(1000000.0),
                 tie_word_embeddings=False))),
    ("llama", dict(
        cls="LlamaConfig", tok="llama3", seed=1007, save="dense",
        cfg=dict(hidden_size=H, intermediate_size=80, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=24,
                 max_position_embeddings=512, rms_norm_eps=1e-5,
                 rope_parameters=rope(500000.0, rope_type="llama3", factor=8.0,
                                      low_freq_factor=1.0, high_freq_factor=4.0,
                                      original_max_position_embeddings=64),
                 tie_word_embeddings=False))),
    ("qwen3", dict(
        cls="Qwen3Config", tok="qwen", seed=1008, save="dense",
        cfg=dict(hidden_size=H, intermediate_size=80, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=24,
                 max_position_embeddings=512, rms_norm_eps=1e-6, use_sliding_window=False,
                 rope_parameters=rope(1000000.0), tie_word_embeddings=True))),
])
ALL_NAMES = list(MODELS) + ["qwen3-moe-fused"]


def special_ids(fam, tok):
    spec = TOKENIZERS[fam]
    ids = {}
    for k in ("bos", "eos", "pad"):
        ids[k + "_token_id"] = tok.token_to_id(spec[k]) if spec[k] else None
    if fam == "qwen":
        ids["bos_token_id"] = tok.token_to_id("<|endoftext|>")
    return ids


def make_config(cls_name, kw):
    import transformers
    cls = getattr(transformers, cls_name)
    try:
        return cls(**kw)
    except TypeError:
        # Older API: rope_theta + rope_scaling instead of rope_parameters.
        kw = dict(kw)
        rp = dict(kw.pop("rope_parameters"))
        kw["rope_theta"] = rp.pop("rope_theta")
        if rp.get("rope_type", "default") != "default":
            kw["rope_scaling"] = rp
        return cls(**kw)


def reinit(model, seed, tied):
    """Weights large enough that the logits are well separated (robust greedy references)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            shape = tuple(p.shape)
            if name.endswith("e_score_correction_bias"):
                v = 0.3 * torch.randn(shape, generator=g)
            elif p.ndim == 1:
                if "norm" in name:
                    v = 1.0 + 0.2 * torch.randn(shape, generator=g)
                else:
                    v = 0.1 * torch.randn(shape, generator=g)
            elif "embed_tokens" in name:
                v = (0.15 if tied else 1.0) * torch.randn(shape, generator=g)
            elif "lm_head" in name:
                v = 2.0 / math.sqrt(shape[-1]) * torch.randn(shape, generator=g)
            else:
                v = torch.randn(shape, generator=g) / math.sqrt(shape[-1])
            if tied and name == "model.norm.weight":
                v = 3.0 * v  # keeps the logits of the tied head well separated
            p.copy_(v.to(p.dtype))
        for name, b in sorted(model.named_buffers(), key=lambda kv: kv[0]):
            if name.endswith("e_score_correction_bias"):
                b.copy_(0.3 * torch.randn(tuple(b.shape), generator=g))


def qualname(obj):
    c = type(obj)
    return c.__module__ + "." + c.__qualname__


def prompt_logits(model, ids):
    import torch
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids),
                                                                               dtype=torch.long))
    return out.logits[0].float().numpy()


def argmax_loop(model, ids, n):
    """Greedy decoding without a KV cache: one full forward per new token."""
    import torch
    seq = list(ids)
    with torch.no_grad():
        for _ in range(n):
            lg = model(input_ids=torch.tensor([seq])).logits[0, -1]
            seq.append(int(torch.argmax(lg)))
    return seq[len(ids):]


def greedy(model, ids, n, notes):
    import torch
    manual = argmax_loop(model, ids, n)
    gen = None
    try:
        model.generation_config.eos_token_id = None  # always produce n tokens
        pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
        with torch.no_grad():
            out = model.generate(input_ids=torch.tensor([ids]),
                                 attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 do_sample=False, max_new_tokens=n, pad_token_id=pad)
        gen = [int(x) for x in out[0, len(ids):]]
    except Exception as e:  # noqa: BLE001
        notes.append("generate() failed: %s: %s" % (type(e).__name__, e))
    if gen is not None and gen != manual:
        notes.append("generate() (KV cache) and the no-cache argmax loop differ: %s vs %s"
                     % (gen, manual))
    return gen if gen is not None else manual, manual


def read_tensors(d):
    from safetensors.torch import load_file
    sd = {}
    for f in sorted(glob.glob(os.path.join(d, "*.safetensors"))):
        sd.update(load_file(f))
    return sd


def remove_weights(d):
    for f in glob.glob(os.path.join(d, "*.safetensors")) + glob.glob(
            os.path.join(d, "*.safetensors.index.json")):
        os.remove(f)


def write_tensors(path, sd):
    from safetensors.torch import save_file
    save_file({k: v.contiguous().clone() for k, v in sd.items()}, path, metadata={"format": "pt"})


def naming_style(keys):
    if any(re.search(r"\.experts\.\d+\.", k) for k in keys):
        return "per_expert"
    if any(re.search(r"\.experts\.(gate_up_proj|down_proj)$", k) for k in keys):
        return "fused"
    return "dense"


def to_per_expert(sd, inter):
    """Split transformers-5 fused expert tensors into per-expert hub tensors (fallback)."""
    out = {}
    for k, t in sd.items():
        m = re.match(r"(.*)\.experts\.gate_up_proj$", k)
        if m:
            if t.shape[1] != 2 * inter:
                t = t.transpose(1, 2)
            for e in range(t.shape[0]):
                out["%s.experts.%d.gate_proj.weight" % (m.group(1), e)] = t[e, :inter]
                out["%s.experts.%d.up_proj.weight" % (m.group(1), e)] = t[e, inter:]
            continue
        m = re.match(r"(.*)\.experts\.down_proj$", k)
        if m:
            if t.shape[2] != inter:
                t = t.transpose(1, 2)
            for e in range(t.shape[0]):
                out["%s.experts.%d.down_proj.weight" % (m.group(1), e)] = t[e]
            continue
        out[k] = t
    return out


def to_mixtral_hub(sd):
    out = {}
    for k, t in sd.items():
        k2 = re.sub(r"\.mlp\.gate\.", ".block_sparse_moe.gate.", k)
        k2 = re.sub(r"\.mlp\.experts\.(\d+)\.gate_proj\.", r".block_sparse_moe.experts.\1.w1.", k2)
        k2 = re.sub(r"\.mlp\.experts\.(\d+)\.up_proj\.", r".block_sparse_moe.experts.\1.w3.", k2)
        k2 = re.sub(r"\.mlp\.experts\.(\d+)\.down_proj\.", r".block_sparse_moe.experts.\1.w2.", k2)
        out[k2] = t
    return out


def config_style(cfg):
    if "rope_parameters" in cfg:
        return "rope_parameters"
    return "hub"


def deepseek_v3_hub_config(cfg):
    """config.json as deepseek-ai/DeepSeek-V3 ships it (rope_theta + rope_scaling 'type')."""
    rp = dict(cfg.get("rope_parameters") or cfg.get("rope_scaling") or {})
    theta = rp.pop("rope_theta", cfg.get("rope_theta", 10000.0))
    rtype = rp.pop("rope_type", rp.pop("type", "yarn"))
    scaling = {"beta_fast": rp.get("beta_fast", 32), "beta_slow": rp.get("beta_slow", 1),
               "factor": rp.get("factor"), "mscale": rp.get("mscale"),
               "mscale_all_dim": rp.get("mscale_all_dim"),
               "original_max_position_embeddings": rp.get("original_max_position_embeddings"),
               "type": rtype}
    keys = ["attention_bias", "attention_dropout", "bos_token_id", "eos_token_id", "ep_size",
            "first_k_dense_replace", "hidden_act", "hidden_size", "initializer_range",
            "intermediate_size", "kv_lora_rank", "max_position_embeddings", "model_type",
            "moe_intermediate_size", "moe_layer_freq", "n_group", "n_routed_experts",
            "n_shared_experts", "norm_topk_prob", "num_attention_heads", "num_experts_per_tok",
            "num_hidden_layers", "num_key_value_heads", "num_nextn_predict_layers", "q_lora_rank",
            "qk_nope_head_dim", "qk_rope_head_dim", "rms_norm_eps", "rope_scaling", "rope_theta",
            "routed_scaling_factor", "scoring_func", "seq_aux", "tie_word_embeddings",
            "topk_group", "topk_method", "torch_dtype", "transformers_version", "use_cache",
            "v_head_dim", "vocab_size"]
    extra = {"ep_size": 1, "moe_layer_freq": 1, "num_nextn_predict_layers": 1,
             "scoring_func": "sigmoid", "seq_aux": True, "topk_method": "noaux_tc",
             "torch_dtype": "float32", "rope_scaling": scaling, "rope_theta": theta,
             "model_type": "deepseek_v3", "aux_loss_alpha": 0.001}
    out = {"architectures": ["DeepseekV3ForCausalLM"]}
    for k in keys:
        if k in extra:
            out[k] = extra[k]
        elif k in cfg:
            out[k] = cfg[k]
    out["aux_loss_alpha"] = 0.001
    return dict(sorted(out.items(), key=lambda kv: (kv[0] != "architectures", kv[0])))


def shard_deepseek(sd, d, extra):
    """Two shards: embed + layers 0-1 | layers 2.. + norm + lm_head (+ the MTP-like tensor)."""
    import torch
    files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    shards = [{}, {}]
    for k, t in sd.items():
        m = re.match(r"model\.layers\.(\d+)\.", k)
        first = k.startswith("model.embed_tokens.") or (m is not None and int(m.group(1)) < 2)
        shards[0 if first else 1][k] = t
    for k, t in extra.items():
        shards[1][k] = t
    weight_map = {}
    total = 0
    for f, s in zip(files, shards):
        write_tensors(os.path.join(d, f), s)
        for k, t in s.items():
            weight_map[k] = f
            total += t.numel() * t.element_size()
    index = {"metadata": {"total_size": total},
             "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as fp:
        json.dump(index, fp, indent=2)
        fp.write("\n")



def dump_json(path, obj, indent=1):
    with open(path, "w") as f:
        json.dump(obj, f, indent=indent, ensure_ascii=False)
        f.write("\n")


def finish_dir(name, d, fam, model_cls_name, naming, written_naming, ref_logits, extra_names,
               versions, notes, load_kwargs, expect_loadable=True):
    """Reload the directory with HF, write reference.json, logits.npy, modules.json,
    tokenizer_cases.json.  ref_logits: in-memory logits to compare against."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    hf_tok = load_hf_tokenizer(d, notes)
    prompt_ids = list(hf_tok(PROMPT).input_ids)
    cases = tokenizer_cases(fam, hf_tok, d, notes)
    dump_json(os.path.join(d, "tokenizer_cases.json"), cases)

    chat = None
    try:
        text = hf_tok.apply_chat_template(CHAT_MESSAGES, tokenize=False, add_generation_prompt=True)
        chat = {"messages": CHAT_MESSAGES, "add_generation_prompt": True, "text": text,
                "ids": list(hf_tok(text, add_special_tokens=False).input_ids)}
    except Exception as e:  # noqa: BLE001
        notes.append("apply_chat_template failed: %s: %s" % (type(e).__name__, e))

    loadable = True
    load_info = {}
    model = None
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            d, dtype=torch.float32, output_loading_info=True, **load_kwargs)
        load_info = {k: sorted(str(x) for x in v) for k, v in info.items()
                     if isinstance(v, (set, list, tuple))}
        if info.get("missing_keys"):
            notes.append("reload reported missing keys: %s" % sorted(info["missing_keys"]))
            loadable = False
        if info.get("mismatched_keys"):
            notes.append("reload reported mismatched keys: %s" % list(info["mismatched_keys"]))
            loadable = False
    except Exception as e:  # noqa: BLE001
        notes.append("from_pretrained failed: %s: %s" % (type(e).__name__, e))
        traceback.print_exc()
        loadable = False
    ref = {"prompt": PROMPT, "prompt_ids": prompt_ids}
    max_diff = None
    if model is not None:
        model.eval()
        logits = prompt_logits(model, prompt_ids)
        if ref_logits is not None and ref_logits.shape == logits.shape:
            max_diff = float(np.abs(logits - ref_logits).max())
            if max_diff > 1e-4:
                notes.append("reloaded logits differ from the in-memory model: max |diff| %.3g"
                             % max_diff)
                loadable = False
        gen, manual = greedy(model, prompt_ids, N_GREEDY, notes)
        modules = [[n, qualname(m)] for n, m in model.named_modules()]
        dump_json(os.path.join(d, "modules.json"), modules, indent=None)
        np.save(os.path.join(d, "logits.npy"), logits.astype(np.float32))
        ref.update({"greedy_ids": gen, "greedy_ids_no_cache": manual})
        return logits, ref, loadable, max_diff, load_info, chat, hf_tok
    return None, ref, loadable, max_diff, load_info, chat, hf_tok


def write_reference(d, ref, meta):
    ref = dict(ref)
    ref.update(meta)
    dump_json(os.path.join(d, "reference.json"), ref, indent=1)


def build_family(name, spec, out_root, versions, tok_cache):
    """Builds `name` (and its fused twin for qwen3-moe). Returns {dir name: status dict}."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    fam = spec["tok"]
    statuses = {}
    d = os.path.join(out_root, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    notes = []

    if fam not in tok_cache:
        tok_cache[fam] = build_tokenizer(fam)
    tok = tok_cache[fam]
    vocab = tok.get_vocab_size(with_added_tokens=True)

    kw = dict(spec["cfg"])
    kw["vocab_size"] = vocab
    kw.update(special_ids(fam, tok))
    config = make_config(spec["cls"], kw)
    torch.manual_seed(spec["seed"])
    try:
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    except TypeError:
        model = AutoModelForCausalLM.from_config(config)
    model = model.float().eval()
    tied = bool(kw.get("tie_word_embeddings"))

    # In-memory logits of the prompt (tokenized by the fresh HF tokenizer).
    save_tokenizer(fam, tok, d)
    probe_notes = []
    prompt_ids = list(load_hf_tokenizer(d, probe_notes)(PROMPT).input_ids)
    # Weights: the first seed whose greedy continuation is not degenerate (>= 12 distinct ids
    # out of 24), so that the reference exercises the KV cache with varied tokens.
    for attempt in range(6):
        seed = spec["seed"] + 100 * attempt
        reinit(model, seed, tied)
        distinct = len(set(argmax_loop(model, prompt_ids, N_GREEDY)))
        if distinct >= 12:
            break
        notes.append("seed %d: greedy continuation has only %d distinct ids; next seed"
                     % (seed, distinct))
    if tied:
        try:
            model.tie_weights()
        except Exception as e:  # noqa: BLE001
            notes.append("tie_weights() failed: %s" % e)
        if model.get_output_embeddings().weight.data_ptr() != \
                model.get_input_embeddings().weight.data_ptr():
            notes.append("tie_word_embeddings is set but lm_head is not the embedding")
    model_cls_name = type(model).__name__
    mem_logits = prompt_logits(model, prompt_ids)
    inmem_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    model.save_pretrained(d)
    written = sorted(read_tensors(d).keys())
    written_naming = naming_style(written)
    sd = read_tensors(d)
    inter = kw.get("moe_intermediate_size", kw.get("intermediate_size"))
    extra = {}
    load_kwargs = {"attn_implementation": "eager"}

    save = spec["save"]
    cfg_path = os.path.join(d, "config.json")
    if save in ("per_expert", "deepseek_hub", "mixtral_hub") and written_naming == "fused":
        notes.append("save_pretrained wrote fused experts; split into per-expert tensors here")
        sd = to_per_expert(sd, inter)
    if save == "mixtral_hub":
        sd = to_mixtral_hub(sd)
    if save == "deepseek_hub":
        for k, b in inmem_state.items():
            if k.endswith("e_score_correction_bias") and k not in sd:
                notes.append("save_pretrained dropped %s; added it" % k)
                sd[k] = b
        remove_weights(d)
        g = torch.Generator().manual_seed(spec["seed"] + 7)
        extra = {"model.layers.%d.embed_tokens.weight" % kw["num_hidden_layers"]:
                 torch.randn(8, H, generator=g)}
        shard_deepseek(sd, d, extra)
        with open(cfg_path) as f:
            cfg = json.load(f)
        dump_json(cfg_path, deepseek_v3_hub_config(cfg), indent=2)
    else:
        remove_weights(d)
        write_tensors(os.path.join(d, "model.safetensors"), sd)
    final_keys = sorted(read_tensors(d).keys())
    naming = naming_style([k for k in final_keys if k not in extra])
    with open(cfg_path) as f:
        cstyle = config_style(json.load(f))

    logits, ref, loadable, max_diff, load_info, chat, hf_tok = finish_dir(
        name, d, fam, model_cls_name, naming, written_naming, mem_logits, list(extra), versions,
        notes, load_kwargs)
    if not loadable:
        notes.append("HF could not reproduce the in-memory model from this directory")
    meta = dict(versions)
    meta.update({
        "model_class": model_cls_name, "tensor_naming": naming, "config_style": cstyle,
        "save_pretrained_naming": written_naming, "hf_loadable": loadable,
        "reload_vs_in_memory_max_abs_diff": max_diff, "extra_tensors": sorted(extra),
        "extra_tensor_shapes": {k: list(v.shape) for k, v in extra.items()},
        "load_info": load_info, "chat": chat, "vocab_size": vocab, "seed": seed,
        "dtype": "float32", "device": "cpu", "attn_implementation": "eager", "notes": notes,
        "generated_by": "scripts/make_fixtures.py"})
    write_reference(d, ref, meta)
    statuses[name] = {"ok": loadable and logits is not None, "tensor_naming": naming,
                      "config_style": cstyle, "save_pretrained_naming": written_naming,
                      "notes": notes}

    # Fused twin: the same weights, written as transformers 5 holds them in memory.
    if spec.get("also_fused"):
        fname = spec["also_fused"]
        fd = os.path.join(out_root, fname)
        if os.path.exists(fd):
            shutil.rmtree(fd)
        shutil.copytree(d, fd)
        for f in ("reference.json", "logits.npy", "modules.json", "tokenizer_cases.json"):
            p = os.path.join(fd, f)
            if os.path.exists(p):
                os.remove(p)
        remove_weights(fd)
        fsd = {k: v for k, v in inmem_state.items() if "rotary_emb" not in k}
        fused_naming = naming_style(fsd.keys())
        write_tensors(os.path.join(fd, "model.safetensors"), fsd)
        fnotes = []
        if fused_naming != "fused":
            fnotes.append("this transformers keeps per-expert tensors in memory; no fused layout")
        flogits, fref, floadable, fdiff, finfo, fchat, _ = finish_dir(
            fname, fd, fam, model_cls_name, fused_naming, fused_naming, mem_logits, [], versions,
            fnotes, load_kwargs)
        if not floadable:
            fnotes.append("HF cannot load the fused directory to the same logits; logits.npy and "
                          "greedy ids are those of the per-expert model (%s)" % name)
            if logits is not None:
                np.save(os.path.join(fd, "logits.npy"), logits.astype(np.float32))
                fref["greedy_ids"] = ref.get("greedy_ids")
                fref["greedy_ids_no_cache"] = ref.get("greedy_ids_no_cache")
            if not os.path.exists(os.path.join(fd, "modules.json")):
                shutil.copy(os.path.join(d, "modules.json"), os.path.join(fd, "modules.json"))
        shapes = {k: list(v.shape) for k, v in fsd.items() if ".experts." in k}
        fmeta = dict(versions)
        fmeta.update({
            "model_class": model_cls_name, "tensor_naming": fused_naming,
            "config_style": cstyle, "save_pretrained_naming": written_naming,
            "hf_loadable": floadable, "reload_vs_in_memory_max_abs_diff": fdiff,
            "extra_tensors": [], "fused_expert_shapes": dict(sorted(shapes.items())),
            "same_weights_as": name, "load_info": finfo, "chat": fchat, "vocab_size": vocab,
            "seed": seed, "dtype": "float32", "device": "cpu",
            "attn_implementation": "eager", "notes": fnotes,
            "generated_by": "scripts/make_fixtures.py"})
        write_reference(fd, fref, fmeta)
        statuses[fname] = {"ok": os.path.exists(os.path.join(fd, "logits.npy")),
                           "hf_loadable": floadable, "tensor_naming": fused_naming,
                           "config_style": cstyle, "notes": fnotes}
    return statuses


def dir_size(d):
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(d, "**"), recursive=True)
               if os.path.isfile(f))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="output root; models are written to OUT/models/<name>")
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--selftest", action="store_true", help="check the BPE trainer only")
    args = ap.parse_args()
    if args.selftest:
        selftest()
        return 0
    if not args.out:
        ap.error("--out is required")

    import numpy
    import safetensors
    import tokenizers
    import torch
    import transformers

    torch.manual_seed(0)
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    try:
        transformers.logging.set_verbosity_error()
    except Exception:  # noqa: BLE001
        pass
    versions = {"transformers_version": transformers.__version__,
                "torch_version": torch.__version__, "tokenizers_version": tokenizers.__version__,
                "safetensors_version": safetensors.__version__, "numpy_version": numpy.__version__}
    print("versions:", versions)
    out_root = os.path.join(args.out, "models")
    os.makedirs(out_root, exist_ok=True)
    only = [s for s in args.only.split(",") if s]
    tok_cache = {}
    manifest = {"generated_by": "scripts/make_fixtures.py", "versions": versions, "models": {}}
    for name, spec in MODELS.items():
        if only and name not in only and spec.get("also_fused") not in only:
            continue
        print("=== %s" % name, flush=True)
        try:
            st = build_family(name, spec, out_root, versions, tok_cache)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            st = {name: {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}}
        for n, s in st.items():
            s["bytes"] = dir_size(os.path.join(out_root, n))
            manifest["models"][n] = s
            print("  %-16s %s" % (n, json.dumps(s, ensure_ascii=False)), flush=True)
    dump_json(os.path.join(out_root, "MANIFEST.json"), manifest, indent=2)
    bad = [n for n, s in manifest["models"].items() if not s.get("ok")]
    print("FAILED:" if bad else "all ok", bad if bad else "")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
