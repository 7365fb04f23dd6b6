//===- Passes.td - kt transformation passes ---------------*- tablegen -*-===//
#ifndef KT_TRANSFORMS_PASSES_TD
#define KT_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def InjectRules : Pass<"kt-inject", "::mlir::ModuleOp"> {
  let summary = "Apply YAML injection rules to the module tree";
  let description = [{
    Walks the module tree parent before children. For each module op the
    first rule (file order) whose `match` holds (name: unanchored PCRE2
    search of the dotted name; class: isinstance on the last dotted
    component) replaces it: `class: default` keeps the op and sets kwargs;
    a kt op name or an upstream KTransformers class path turns it into the
    corresponding kt op (kt.cpu_experts, kt.marlin_linear, kt.mla, ...).
    The op records the rule index (`rule`), the upstream class (`impl`), the
    devices and every kwarg as typed attributes. `recursive: false` stops
    the walk below the replaced module. A rule whose replacement does not fit
    the matched module fails with the rule's file and line.
  }];
  let options = [
    Option<"rulesFile", "rules", "std::string", "\"\"",
           "YAML rules file to apply">,
  ];
  let dependentDialects = ["::mlir::kt::KtDialect"];
}

def PlaceDevices : Pass<"kt-place", "::mlir::ModuleOp"> {
  let summary = "Resolve every op to a device and make device boundaries explicit";
  let description = [{
    Policy for modules no rule placed: a module that no rule matched, or
    whose rule gave no device, takes its parent's generate device for both
    phases; the root takes `default-device`. (KTransformers gives such
    modules the global default device instead; the two agree whenever the
    parents are on the default device, as in every upstream rule file. kt
    inherits so that the children of a module placed elsewhere follow it.)
    `kt.placed_by` records "rule", "inherited" or "default". A module whose
    rule set only generate_device uses it for prefill too. Computation ops
    run on their container's device. Values cross container boundaries
    freely; where an op uses a value living on another device (a module's
    `out_device`, else where it was computed) a `kt.transfer` is inserted,
    with its devices in both phases. A model `transfer_map` that disagrees
    with the layers' placement is reported as a warning.
  }];
  let options = [
    Option<"defaultDevice", "default-device", "std::string", "\"cuda:0\"",
           "Device of the root module when no rule places it">,
  ];
  let dependentDialects = ["::mlir::kt::KtDialect"];
}

def PlacementReport : Pass<"kt-placement-report", "::mlir::ModuleOp"> {
  let summary = "Write the placement of every module as JSON";
  let description = [{
    Writes a JSON array with one object per module op, parent before
    children: module, class, op, rule (index or null), generate_device,
    prefill_device, placed_by and kwargs. `file` "-" writes to stdout.
  }];
  let options = [
    Option<"outputFile", "file", "std::string", "\"-\"", "Output file">,
  ];
}

def MemoryReport : Pass<"kt-memory-report", "::mlir::ModuleOp"> {
  let summary = "Print the weight bytes each device holds, from the IR alone";
  let description = [{
    Sums the #kt.weight tensors referenced by module ops per device (the
    generate-phase device; a tensor shared by two modules on one device
    counts once) and the prefill-phase footprint, as a table.
  }];
  let options = [
    Option<"outputFile", "file", "std::string", "\"-\"", "Output file">,
  ];
}

def LowerToPlan : Pass<"kt-lower-plan", "::mlir::ModuleOp"> {
  let summary = "Flatten the placed module tree into the runtime's plan (JSON)";
  let description = [{
    Lowers the module after kt-inject and kt-place to a `kt::Plan`
    (include/kt/Runtime/Plan.h, docs/plan.md): the ops the runtime executes,
    in execution order, with numbered values. The root `kt.module`'s block
    arguments are the token ids and positions; what it yields are the
    logits.

    Containers (`kt.module`, `kt.mla`) disappear: their block arguments
    stand for their operands and their results for what their `kt.yield`
    returns. A `kt.experts` that no rule replaced becomes one `experts` op
    whose per-expert gate/up/down weights are gathered from its children
    (or its fused weights). Every other op becomes a plan op: its kind (the
    op name without `kt.`), module name and class, devices (compute ops take
    their enclosing module's; a transfer its source and destination per
    phase), kernel (`cpu.<kind>`, `cuda.<kind>`,
    `cpu.experts.<backend|reference>`, `transfer`), `#kt.weight`
    attributes by role, weight arrays (`gate_proj`, `up_proj`, `down_proj`),
    and the scalar attributes, rule kwargs flattened in.

    `kt.mla_core` takes the `kv_b_proj` linear that produces its `kv`
    operand as its `kv_b` weight and drops the `kv` input (its inputs are q,
    latent, k_pe, cos, sin); the linear goes when nothing else uses it.
    `absorb` is the enclosing `kt.mla`'s (false outside one). The plan also
    records the generate-phase weight bytes per device.

    Anything the runtime could not execute (an unknown op, a value that is
    not a [rows, cols] f32 or i64 tensor, an unplaced op) is an error at its
    location. `file` "-" writes the JSON to stdout; nothing is written on
    failure.
  }];
  let options = [
    Option<"outputFile", "file", "std::string", "\"-\"", "Output file">,
  ];
}

#endif // KT_TRANSFORMS_PASSES_TD
