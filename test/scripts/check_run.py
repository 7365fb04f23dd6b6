#!/usr/bin/env python3
"""Compares kt-run's output on a fixture model with Hugging Face's reference.

  check_run.py FIXTURE_DIR --logits KT.npy [--tol 1e-4]
               [--ids IDS.txt [--ids-key greedy_ids] [--min-match N]]

--logits: kt's `--dump-logits` file against FIXTURE_DIR/logits.npy (HF fp32
logits of reference.json's prompt_ids). The error is
max |kt - hf| / max |hf| over every prompt position and vocabulary entry; it
must be <= --tol; with --outlier-rows F, up to a fraction F of the prompt
positions may exceed it (bf16: a router near a tie may pick another expert
for one token, as HF's own bf16 does), and the error reported is the worst
of the remaining rows. The argmax of every position is also reported.
--ids: the line `kt-run --print-ids` printed, against reference.json[ids-key]
(all of them must match unless --min-match N allows a shorter common prefix).
Prints one summary line; exits 1 on a mismatch. Needs only the standard
library (no numpy) so that CI needs nothing beyond python3.
"""
import argparse
import array
import ast
import json
import os
import sys


def read_npy_f32(path):
    with open(path, "rb") as f:
        magic = f.read(6)
        if magic != b"\x93NUMPY":
            sys.exit(f"{path}: not a .npy file")
        major = f.read(2)[0]
        hlen_bytes = 2 if major == 1 else 4
        hlen = int.from_bytes(f.read(hlen_bytes), "little")
        header = ast.literal_eval(f.read(hlen).decode("latin1"))
        if header["descr"] != "<f4" or header["fortran_order"]:
            sys.exit(f"{path}: expected little-endian float32 C order, got {header}")
        shape = header["shape"]
        data = array.array("f")
        data.frombytes(f.read())
    n = 1
    for d in shape:
        n *= d
    if len(data) != n:
        sys.exit(f"{path}: {len(data)} values for shape {shape}")
    return shape, data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fixture")
    ap.add_argument("--logits")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--ids")
    ap.add_argument("--ids-key", default="greedy_ids")
    ap.add_argument("--min-match", type=int, default=None)
    ap.add_argument("--outlier-rows", type=float, default=0.0)
    a = ap.parse_args()
    name = os.path.basename(os.path.normpath(a.fixture))
    ok = True
    parts = [name]
    if a.logits:
        rshape, ref = read_npy_f32(os.path.join(a.fixture, "logits.npy"))
        kshape, got = read_npy_f32(a.logits)
        if tuple(rshape) != tuple(kshape):
            print(f"{name}: logits shape {kshape} != reference {rshape}")
            sys.exit(1)
        scale = max(abs(x) for x in ref)
        rows, vocab = rshape
        row_err = sorted(
            max(abs(got[i] - ref[i]) for i in range(r * vocab, (r + 1) * vocab)) / scale
            for r in range(rows))
        allowed = int(a.outlier_rows * rows)
        err = row_err[rows - 1 - allowed]
        if allowed:
            parts.append(f"outliers_allowed={allowed} worst_row={row_err[-1]:.3e}")
        argmax_diff = 0
        for r in range(rows):
            rr = ref[r * vocab:(r + 1) * vocab]
            gg = got[r * vocab:(r + 1) * vocab]
            if max(range(vocab), key=rr.__getitem__) != max(range(vocab), key=gg.__getitem__):
                argmax_diff += 1
        parts.append(f"max_rel_err={err:.3e} (tol {a.tol:g}) argmax_mismatch={argmax_diff}/{rows}")
        if not err <= a.tol:
            ok = False
    if a.ids:
        ref_ids = json.load(open(os.path.join(a.fixture, "reference.json")))[a.ids_key]
        got_ids = [int(x) for x in open(a.ids).read().split()]
        common = 0
        while common < min(len(ref_ids), len(got_ids)) and ref_ids[common] == got_ids[common]:
            common += 1
        need = len(ref_ids) if a.min_match is None else a.min_match
        parts.append(f"ids_match={common}/{len(ref_ids)}")
        if common < need:
            ok = False
            parts.append(f"expected {ref_ids} got {got_ids}")
    print(("OK " if ok else "FAIL ") + " ".join(parts))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
