#!/usr/bin/env python3
"""Copies a fixture model directory and breaks it one way, for kt-run's
bad-input tests:  break_model.py MODE SRC DST
  truncate     cut model.safetensors in the middle of the last tensor
  header       overwrite the JSON header with garbage of the same length
  drop         rewrite model.safetensors without TENSOR (env DROP)
  dtype        declare the first 2-byte tensor... as I16 (unsupported)
  arch         config.json architectures = GPT2LMHeadModel
"""
import json
import os
import shutil
import struct
import sys

mode, src, dst = sys.argv[1:4]
shutil.rmtree(dst, ignore_errors=True)
shutil.copytree(src, dst)
st = os.path.join(dst, "model.safetensors")


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    return header, data


def write(path, header, data):
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


if mode == "truncate":
    size = os.path.getsize(st)
    with open(st, "r+b") as f:
        f.truncate(size - 100)
elif mode == "header":
    with open(st, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        f.write(b"{" + b"x" * (n - 1))
elif mode == "drop":
    header, data = read(st)
    name = os.environ["DROP"]
    del header[name]
    write(st, header, data)
elif mode == "dtype":
    header, data = read(st)
    name = os.environ["TENSOR"]
    assert header[name]["dtype"] == "F32", header[name]
    header[name]["dtype"] = "I32"
    write(st, header, data)
elif mode == "arch":
    cfg = json.load(open(os.path.join(dst, "config.json")))
    cfg["architectures"] = ["GPT2LMHeadModel"]
    json.dump(cfg, open(os.path.join(dst, "config.json"), "w"))
else:
    sys.exit("unknown mode " + mode)
