#!/usr/bin/env python3
"""Independent model of KTransformers' rule placement, checked against kt.

    upstream_placement.py RULES.yaml REPORT.json [--default-device DEV]
                          [--semantics upstream|inherit] [--verbose] [--list]

RULES is a KTransformers injection rule file; REPORT is the JSON written by
`kt-opt MODEL --rules RULES --placement-report=REPORT`. The report supplies
the module tree (names and original classes, parent before children); this
script re-derives, with Python's `re` and PyYAML (what upstream uses), which
rule upstream would pick for every module and on which devices the module
would end up, and compares that with kt's report. Mismatches are printed and
the exit status is 1; otherwise it prints "OK <N> modules" (N = modules
compared) and exits 0. Rules that placed no module (none matched, or an
earlier rule always won) are listed as notes.

What upstream does (ktransformers/optimize/optimize.py, gen_optimize_config,
read at kvcache-ai/ktransformers 1a4cd7dc and in the KT-SFT fork):

  * The walk is pre-order over `module._modules` of the *original* model,
    starting at the root with prefix "" (so the root's name is "").
  * For each module the rules are tried in file order. `match.class` is
    imported and tested with isinstance(); `match.name` with
    re.search(pattern, dotted_name) (unanchored). A rule with neither raises.
  * The FIRST matching rule wins: after recording it the loop `break`s. The
    code has an `else` branch that, when the module is already in out_data,
    keeps an earlier non-default class and merges (dict.update) the later
    rule's kwargs -- but within one gen_optimize_config run every dotted
    name is visited once, so that branch is dead: kwargs of later matching
    rules are never merged. This script therefore stops at the first match.
  * `recursive: false` on the winning rule stops the walk below the module
    (its children get no entry at all); a `recursive` key on a rule that
    did not win has no effect.
  * A module no rule matches gets class "default" with kwargs
    {generate_device: default_device, prefill_device: default_device} where
    default_device is the *global* default passed down unchanged (newest
    code) or the function's own default "cuda:0" (older code, which does
    not pass it to the recursive call). It is NOT the parent's device:
    upstream has no device inheritance. optimize_and_load_gguf first turns
    any default containing "cuda" into "cuda:0".
  * A module a rule matches gets exactly that rule's replace.kwargs. When
    they lack generate_device / prefill_device, the injected operator's
    constructor defaults apply: "cuda" for BaseInjectedModule subclasses,
    generate "cpu" / prefill "cuda" for KTransformersExperts. For
    `class: default` without devices upstream has no device at all (its
    weight loader would raise KeyError); such fields are not compared.

kt-place (include/kt/Transforms/Passes.td) instead resolves an unset device
from the parent module.
With the default device cuda:0 this agrees with upstream for the vendored
rule files and fixtures; --semantics inherit switches this model to kt's
inheritance rule (unmatched or device-less modules take the parent's
generate device; only generate set: prefill = generate) to separate that
design choice from other differences.

Class matching: kt has no Python classes, so isinstance is modelled with the
table below (leaf -> base leaf), comparing the last dotted component; every
class is a torch.nn.Module.
"""

import argparse
import copy
import json
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML is present where lit runs
    sys.stderr.write("upstream_placement.py: needs PyYAML (import yaml)\n")
    sys.exit(2)

# Subclass -> base class (leaves). Classes not listed derive from Module only.
BASES = {
    "DeepseekV2YarnRotaryEmbedding": "DeepseekV2RotaryEmbedding",
    "DeepseekV2LinearScalingRotaryEmbedding": "DeepseekV2RotaryEmbedding",
    "DeepseekV2DynamicNTKScalingRotaryEmbedding": "DeepseekV2RotaryEmbedding",
    "DeepseekV2FlashAttention2": "DeepseekV2Attention",
    "DeepseekV3YarnRotaryEmbedding": "DeepseekV3RotaryEmbedding",
    "DeepseekV3LinearScalingRotaryEmbedding": "DeepseekV3RotaryEmbedding",
    "DeepseekV3DynamicNTKScalingRotaryEmbedding": "DeepseekV3RotaryEmbedding",
    "DeepseekV3FlashAttention2": "DeepseekV3Attention",
    "Qwen2MoeFlashAttention2": "Qwen2MoeAttention",
    "Qwen2MoeSdpaAttention": "Qwen2MoeAttention",
    "MixtralFlashAttention2": "MixtralAttention",
    "MixtralSdpaAttention": "MixtralAttention",
    "LlamaLinearScalingRotaryEmbedding": "LlamaRotaryEmbedding",
    "LlamaDynamicNTKScalingRotaryEmbedding": "LlamaRotaryEmbedding",
    "LlamaFlashAttention2": "LlamaAttention",
    "LlamaSdpaAttention": "LlamaAttention",
}

# Constructor defaults of upstream operators that differ from
# BaseInjectedModule's generate_device="cuda", prefill_device="cuda".
OPERATOR_DEFAULTS = {
    "KTransformersExperts": {"generate_device": "cpu", "prefill_device": "cuda"},
    "KTransformersExpertsV2": {"generate_device": "cpu", "prefill_device": "cuda"},
    # kt's own op names, accepted by kt as replace classes: CPU experts run
    # generate on the CPU whatever the rule leaves out, like upstream's.
    "cpu_experts": {"generate_device": "cpu", "prefill_device": "cuda"},
}
BASE_OPERATOR_DEFAULTS = {"generate_device": "cuda", "prefill_device": "cuda"}


def leaf(dotted):
    return dotted.rsplit(".", 1)[-1]


def isinstance_of(module_class, rule_class):
    """isinstance(module, rule_class) on class leaves."""
    base = leaf(rule_class)
    cls = leaf(module_class)
    if base == "Module":
        return True
    seen = set()
    while cls and cls not in seen:
        if cls == base:
            return True
        seen.add(cls)
        cls = BASES.get(cls)
    return False


def normalize(device):
    """kt's normalisation: "cuda" -> "cuda:0"; anything else unchanged."""
    if device == "cuda":
        return "cuda:0"
    return device


def upstream_default_device(device):
    """optimize_and_load_gguf: any default mentioning cuda becomes cuda:0."""
    if "cuda" in device:
        return "cuda:0"
    if "xpu" in device:
        return "xpu:0"
    return device


def build_tree(rows):
    """Children lists from report order; parent = longest proper dotted
    prefix present in the report, "" (the root) otherwise."""
    names = [r["module"] for r in rows]
    present = set(names)
    children = {n: [] for n in names}
    parent = {}
    for n in names:
        if n == "":
            continue
        p = n
        while True:
            p = p.rsplit(".", 1)[0] if "." in p else ""
            if p in present or p == "":
                break
        parent[n] = p
        children.setdefault(p, []).append(n)
    return children, parent


def first_match(rules, name, cls):
    """gen_optimize_config's rule loop: the index of the first rule that
    matches, or None. Mirrors the order of tests: class, then name."""
    for i, rule in enumerate(rules):
        meta = rule["match"]
        if "class" not in meta and "name" not in meta:
            raise SystemExit('match must have at least one of "class" and "name"')
        if "class" in meta and not isinstance_of(cls, meta["class"]):
            continue
        if "name" in meta and re.search(meta["name"], name) is None:
            continue
        if "replace" not in rule:
            raise SystemExit("replace must be in rule")
        return i  # upstream `break`s here: first match wins, no merging
    return None


def gen_optimize_config(rules, rows, default_device):
    """Upstream's walk. Returns {name: entry} for every module it visits,
    entry = {"rule": index|None, "class": replace class, "kwargs": dict}."""
    classes = {r["module"]: r["class"] for r in rows}
    children, _ = build_tree(rows)
    out = {}

    def visit(name):
        idx = first_match(rules, name, classes[name])
        recursive = True
        if idx is not None:
            rule = rules[idx]
            replace = rule["replace"] or {}
            kwargs = replace.get("kwargs") if "kwargs" in replace else {}
            out[name] = {
                "rule": idx,
                "class": replace.get("class", "default"),
                "kwargs": copy.deepcopy(kwargs) if kwargs is not None else {},
            }
            if "recursive" in rule:
                recursive = bool(rule["recursive"])
        else:
            out[name] = {
                "rule": None,
                "class": "default",
                "kwargs": {"generate_device": default_device,
                           "prefill_device": default_device},
            }
        if recursive:
            for child in children.get(name, []):
                visit(child)

    if "" not in classes:
        raise SystemExit("report has no root module (\"module\": \"\")")
    visit("")
    return out


def expected_devices(entry, parent_gen, semantics):
    """(generate, prefill) upstream gives the module; None = undefined."""
    kw = entry["kwargs"]
    gen = kw.get("generate_device")
    pre = kw.get("prefill_device")
    if semantics == "inherit":
        if entry["rule"] is None:
            return parent_gen, parent_gen
        if gen is None and pre is None:
            return parent_gen, parent_gen
        if gen is None:
            return parent_gen, normalize(pre)
        if pre is None:
            return normalize(gen), normalize(gen)
        return normalize(gen), normalize(pre)
    if entry["class"] != "default":
        defaults = OPERATOR_DEFAULTS.get(leaf(entry["class"]),
                                         BASE_OPERATOR_DEFAULTS)
        gen = gen if gen is not None else defaults["generate_device"]
        pre = pre if pre is not None else defaults["prefill_device"]
    return (normalize(gen) if gen is not None else None,
            normalize(pre) if pre is not None else None)


def canon(value):
    """kwargs as JSON sees them (mapping keys become strings)."""
    if isinstance(value, dict):
        return {str(k): canon(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canon(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return value
    return value


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rules")
    ap.add_argument("report")
    ap.add_argument("--default-device", default="cuda:0",
                    help="the default device kt-opt was run with")
    ap.add_argument("--semantics", choices=["upstream", "inherit"],
                    default="upstream")
    ap.add_argument("--verbose", action="store_true",
                    help="print upstream's decision for every module")
    ap.add_argument("--list", action="store_true",
                    help="print kt's report one module a line (for FileCheck)")
    args = ap.parse_args()

    with open(args.rules, encoding="utf-8") as f:
        rules = yaml.load(f.read(), Loader=yaml.FullLoader)
    with open(args.report, encoding="utf-8") as f:
        rows = json.load(f)
    if not isinstance(rules, list):
        raise SystemExit("rules file is not a list of rules")

    if args.semantics == "upstream":
        default = upstream_default_device(args.default_device)
    else:
        default = args.default_device
    default = normalize(default)
    upstream = gen_optimize_config(rules, rows, default)
    _, parent = build_tree(rows)

    if args.list:
        for row in rows:
            line = "%s: %s rule=%s generate=%s prefill=%s placed_by=%s" % (
                row["module"] or "<root>", row.get("op"), row.get("rule"),
                row.get("generate_device"), row.get("prefill_device"),
                row.get("placed_by"))
            if row.get("impl"):
                line += " impl=" + row["impl"]
            print(line)

    problems = []
    expected_gen = {}
    compared = 0
    for row in rows:
        name = row["module"]
        label = repr(name) if name else "<root>"
        if name not in upstream:
            # Below a recursive: false replacement: upstream never visits it.
            if row.get("rule") is not None:
                problems.append("%s: below a 'recursive: false' module upstream "
                                "never visits, but kt applied rule %s"
                                % (label, row["rule"]))
            continue
        entry = upstream[name]
        parent_gen = expected_gen.get(parent.get(name), default)
        gen, pre = expected_devices(entry, parent_gen, args.semantics)
        expected_gen[name] = gen if gen is not None else parent_gen
        compared += 1
        if args.verbose:
            print("%s [%s] rule=%s class=%s generate=%s prefill=%s" % (
                label, leaf(row["class"]), entry["rule"], entry["class"],
                gen, pre))
        if row.get("rule") != entry["rule"]:
            problems.append("%s (%s): rule: upstream %s, kt %s" % (
                label, row["class"], entry["rule"], row.get("rule")))
        if gen is not None and row.get("generate_device") != gen:
            problems.append("%s (%s): generate_device: upstream %s, kt %s" % (
                label, row["class"], gen, row.get("generate_device")))
        if pre is not None and row.get("prefill_device") != pre:
            problems.append("%s (%s): prefill_device: upstream %s, kt %s" % (
                label, row["class"], pre, row.get("prefill_device")))
        if entry["rule"] is not None:
            want = canon(entry["kwargs"])
            got = canon(row.get("kwargs") or {})
            if want != got:
                problems.append("%s: kwargs: upstream %s, kt %s" % (
                    label, json.dumps(want, sort_keys=True),
                    json.dumps(got, sort_keys=True)))

    used = {e["rule"] for e in upstream.values() if e["rule"] is not None}
    for i, rule in enumerate(rules):
        if i in used:
            continue
        meta = rule.get("match", {})
        what = ", ".join("%s %r" % (k, meta[k]) for k in ("name", "class")
                         if k in meta)
        print("note: rule %d (%s) placed no module" % (i, what))

    for p in problems:
        print("MISMATCH: " + p)
    if problems:
        print("FAIL %d mismatch(es) in %d modules" % (len(problems), compared))
        return 1
    print("OK %d modules" % compared)
    return 0


if __name__ == "__main__":
    sys.exit(main())
