#!/usr/bin/env python3
"""Copies a kt-quant output directory and damages it one way, for the
refusal tests:  damage.py MODE SRC DST
  truncate      cut the first layer file 100 bytes short
  flip          flip one bit in the last byte of the first layer file
  version       set the first layer file's format version to 2
  no-manifest   remove manifest.json (as an interrupted run leaves it)
"""
import json
import os
import shutil
import sys

mode, src, dst = sys.argv[1:4]
shutil.rmtree(dst, ignore_errors=True)
shutil.copytree(src, dst)
with open(os.path.join(dst, "manifest.json")) as f:
    layer = os.path.join(dst, json.load(f)["layers"][0]["file"])

if mode == "truncate":
    os.truncate(layer, os.path.getsize(layer) - 100)
elif mode == "flip":
    with open(layer, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        b = f.read(1)[0]
        f.seek(-1, os.SEEK_END)
        f.write(bytes([b ^ 1]))
elif mode == "version":
    with open(layer, "r+b") as f:
        f.seek(8)
        f.write((2).to_bytes(4, "little"))
elif mode == "no-manifest":
    os.remove(os.path.join(dst, "manifest.json"))
else:
    sys.exit("unknown mode " + mode)
