//===- Plan.cpp - the executable plan as JSON -----------------------------===//
//
// See include/kt/Runtime/Plan.h and docs/plan.md. planFromJson checks
// everything an executor relies on (schema, value ids, definition before
// use) so that the executor can index without checking. Nothing here throws
// out of the API: nlohmann::json exceptions are caught at the boundary and
// become Errors.
//
//===----------------------------------------------------------------------===//

#include "kt/Runtime/Plan.h"

#include <exception>
#include <optional>
#include <sstream>

using nlohmann::json;

namespace kt {

namespace {

const char *valueTypeName(ValueType t) {
  return t == ValueType::I64 ? "i64" : "f32";
}

json weightToJson(const PlanWeight &w) {
  return json{{"tensor", w.tensor},
              {"file", w.file},
              {"dtype", std::string(dtypeName(w.dtype))},
              {"shape", w.shape}};
}

/// Thrown inside planFromJson only, caught at its boundary.
struct PlanError {
  std::string message;
};

/// Reads one plan, collecting the first problem with enough context (the
/// op index and name) for a human to find it.
class Reader {
public:
  explicit Reader(const std::string &displayName) : displayName(displayName) {}

  Plan read(const json &j) {
    if (!j.is_object())
      fail("the plan is not a JSON object");
    const json &version = require(j, "version", "the plan");
    if (!version.is_number_integer())
      fail("'version' is not an integer");
    if (version.get<int64_t>() != kPlanVersion)
      fail("plan version " + version.dump() + " is not supported (expected " +
           std::to_string(kPlanVersion) + ")");
    Plan plan;
    plan.version = kPlanVersion;
    plan.architecture = optString(j, "architecture", "the plan");
    plan.source = optString(j, "source", "the plan");

    const json &values = require(j, "values", "the plan");
    if (!values.is_array())
      fail("'values' is not an array");
    for (size_t i = 0; i < values.size(); ++i)
      plan.values.push_back(readValue(values[i], i));

    plan.tokensValue = readValueId(j, "tokens", plan, "the plan");
    plan.positionsValue = readValueId(j, "positions", plan, "the plan");
    plan.logitsValue = readValueId(j, "logits", plan, "the plan");
    if (plan.tokensValue == plan.positionsValue)
      fail("'tokens' and 'positions' are the same value " +
           std::to_string(plan.tokensValue));
    if (plan.values[plan.tokensValue].type != ValueType::I64)
      fail("'tokens' (value " + std::to_string(plan.tokensValue) +
           ") is not an i64 value");
    if (plan.values[plan.positionsValue].type != ValueType::I64)
      fail("'positions' (value " + std::to_string(plan.positionsValue) +
           ") is not an i64 value");
    if (plan.values[plan.logitsValue].type != ValueType::F32)
      fail("'logits' (value " + std::to_string(plan.logitsValue) +
           ") is not an f32 value");

    std::vector<bool> defined(plan.values.size(), false);
    defined[plan.tokensValue] = defined[plan.positionsValue] = true;

    const json &ops = require(j, "ops", "the plan");
    if (!ops.is_array())
      fail("'ops' is not an array");
    for (size_t i = 0; i < ops.size(); ++i)
      plan.ops.push_back(readOp(ops[i], i, plan, defined));
    if (!defined[plan.logitsValue])
      fail("'logits' (value " + std::to_string(plan.logitsValue) +
           ") is not defined by any op");

    if (auto it = j.find("generate_bytes"); it != j.end()) {
      if (!it->is_object())
        fail("'generate_bytes' is not an object");
      for (auto &[device, bytes] : it->items()) {
        if (!bytes.is_number_integer() || bytes.get<int64_t>() < 0)
          fail("'generate_bytes' of '" + device +
               "' is not a non-negative integer");
        plan.generateBytes[device] = bytes.get<int64_t>();
      }
    }
    return plan;
  }

private:
  const std::string &displayName;

  [[noreturn]] void fail(const std::string &message) {
    throw PlanError{displayName + ": " + message};
  }

  static std::string opWhere(size_t index, const json &op) {
    std::string where = "op " + std::to_string(index);
    if (op.is_object()) {
      auto name = op.find("name");
      auto kind = op.find("kind");
      std::string label;
      if (name != op.end() && name->is_string() &&
          !name->get<std::string>().empty())
        label = "'" + name->get<std::string>() + "'";
      if (kind != op.end() && kind->is_string())
        label += (label.empty() ? "" : ", ") + kind->get<std::string>();
      if (!label.empty())
        where += " (" + label + ")";
    }
    return where;
  }

  const json &require(const json &obj, const char *key,
                      const std::string &where) {
    auto it = obj.find(key);
    if (it == obj.end())
      fail(where + ": missing '" + key + "'");
    return *it;
  }

  std::string optString(const json &obj, const char *key,
                        const std::string &where) {
    auto it = obj.find(key);
    if (it == obj.end())
      return {};
    if (!it->is_string())
      fail(where + ": '" + key + "' is not a string");
    return it->get<std::string>();
  }

  PlanValue readValue(const json &v, size_t index) {
    std::string where = "value " + std::to_string(index);
    if (!v.is_object())
      fail(where + " is not an object");
    PlanValue value;
    const json &type = require(v, "type", where);
    if (type == "f32")
      value.type = ValueType::F32;
    else if (type == "i64")
      value.type = ValueType::I64;
    else
      fail(where + ": type " + type.dump() + " is not \"f32\" or \"i64\"");
    const json &cols = require(v, "cols", where);
    if (!cols.is_number_integer() || cols.get<int64_t>() < 1)
      fail(where + ": 'cols' is not a positive integer");
    value.cols = cols.get<int64_t>();
    return value;
  }

  int checkId(const json &id, const Plan &plan, const std::string &what) {
    if (!id.is_number_integer())
      fail(what + " is not an integer value id");
    int64_t v = id.get<int64_t>();
    if (v < 0 || v >= static_cast<int64_t>(plan.values.size()))
      fail(what + ": value " + std::to_string(v) +
           " is out of range (the plan has " +
           std::to_string(plan.values.size()) + " values)");
    return static_cast<int>(v);
  }

  int readValueId(const json &obj, const char *key, const Plan &plan,
                  const std::string &where) {
    return checkId(require(obj, key, where), plan,
                   "'" + std::string(key) + "'");
  }

  PlanWeight readWeight(const json &w, const std::string &where) {
    if (!w.is_object())
      fail(where + " is not an object");
    PlanWeight weight;
    const json &tensor = require(w, "tensor", where);
    if (!tensor.is_string() || tensor.get<std::string>().empty())
      fail(where + ": 'tensor' is not a non-empty string");
    weight.tensor = tensor.get<std::string>();
    const json &file = require(w, "file", where);
    if (!file.is_string() || file.get<std::string>().empty())
      fail(where + ": 'file' is not a non-empty string");
    weight.file = file.get<std::string>();
    const json &dtype = require(w, "dtype", where);
    std::optional<DType> parsed;
    if (dtype.is_string())
      parsed = parseDType(dtype.get<std::string>());
    if (!parsed)
      fail(where + ": dtype " + dtype.dump() + " is not a safetensors dtype");
    weight.dtype = *parsed;
    const json &shape = require(w, "shape", where);
    if (!shape.is_array())
      fail(where + ": 'shape' is not an array");
    for (const json &d : shape) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        fail(where +
             ": 'shape' has an entry that is not a non-negative integer");
      weight.shape.push_back(d.get<int64_t>());
    }
    return weight;
  }

  PlanOp readOp(const json &o, size_t index, const Plan &plan,
                std::vector<bool> &defined) {
    std::string where = opWhere(index, o);
    if (!o.is_object())
      fail(where + " is not an object");
    PlanOp op;
    const json &kind = require(o, "kind", where);
    if (!kind.is_string() || kind.get<std::string>().empty())
      fail(where + ": 'kind' is not a non-empty string");
    op.kind = kind.get<std::string>();
    op.name = optString(o, "name", where);
    op.moduleClass = optString(o, "class", where);
    op.generateDevice = optString(o, "generate_device", where);
    op.prefillDevice = optString(o, "prefill_device", where);
    op.generateFrom = optString(o, "generate_from", where);
    op.prefillFrom = optString(o, "prefill_from", where);
    op.kernel = optString(o, "kernel", where);
    if (op.generateDevice.empty() || op.prefillDevice.empty())
      fail(where + ": 'generate_device' and 'prefill_device' are required");
    if (op.kernel.empty())
      fail(where + ": 'kernel' is required");
    if (op.kind == "transfer" &&
        (op.generateFrom.empty() || op.prefillFrom.empty()))
      fail(where + ": a transfer needs 'generate_from' and 'prefill_from'");

    const json &inputs = require(o, "inputs", where);
    if (!inputs.is_array())
      fail(where + ": 'inputs' is not an array");
    for (size_t i = 0; i < inputs.size(); ++i) {
      int id = checkId(inputs[i], plan, where + ": input " + std::to_string(i));
      if (!defined[id])
        fail(where + ": input " + std::to_string(i) + " uses value " +
             std::to_string(id) +
             ", which no earlier op defines (nor is it tokens or positions)");
      op.inputs.push_back(id);
    }
    const json &outputs = require(o, "outputs", where);
    if (!outputs.is_array())
      fail(where + ": 'outputs' is not an array");
    for (size_t i = 0; i < outputs.size(); ++i) {
      int id =
          checkId(outputs[i], plan, where + ": output " + std::to_string(i));
      if (defined[id])
        fail(where + ": output " + std::to_string(i) + " redefines value " +
             std::to_string(id) + " (each value is defined once)");
      defined[id] = true;
      op.outputs.push_back(id);
    }
    if (op.kind == "transfer" &&
        (op.inputs.size() != 1 || op.outputs.size() != 1))
      fail(where + ": a transfer has one input and one output");

    if (auto it = o.find("weights"); it != o.end()) {
      if (!it->is_object())
        fail(where + ": 'weights' is not an object");
      for (auto &[role, w] : it->items())
        op.weights[role] = readWeight(w, where + ": weight '" + role + "'");
    }
    if (auto it = o.find("weight_lists"); it != o.end()) {
      if (!it->is_object())
        fail(where + ": 'weight_lists' is not an object");
      for (auto &[role, list] : it->items()) {
        if (!list.is_array())
          fail(where + ": weight list '" + role + "' is not an array");
        std::vector<PlanWeight> &out = op.weightLists[role];
        for (size_t i = 0; i < list.size(); ++i)
          out.push_back(readWeight(list[i], where + ": weight list '" + role +
                                                "' entry " +
                                                std::to_string(i)));
      }
    }
    if (auto it = o.find("attrs"); it != o.end()) {
      if (!it->is_object())
        fail(where + ": 'attrs' is not an object");
      for (auto &[key, value] : it->items())
        if (!value.is_primitive() || value.is_null())
          fail(where + ": attribute '" + key +
               "' is not a number, boolean or string");
      op.attrs = *it;
    }
    return op;
  }
};

} // namespace

json planToJson(const Plan &plan) {
  json values = json::array();
  for (const PlanValue &v : plan.values)
    values.push_back({{"type", valueTypeName(v.type)}, {"cols", v.cols}});
  json ops = json::array();
  for (const PlanOp &op : plan.ops) {
    json weights = json::object();
    for (const auto &[role, w] : op.weights)
      weights[role] = weightToJson(w);
    json lists = json::object();
    for (const auto &[role, list] : op.weightLists) {
      json arr = json::array();
      for (const PlanWeight &w : list)
        arr.push_back(weightToJson(w));
      lists[role] = std::move(arr);
    }
    json o = json::object();
    o["kind"] = op.kind;
    o["name"] = op.name;
    o["class"] = op.moduleClass;
    o["generate_device"] = op.generateDevice;
    o["prefill_device"] = op.prefillDevice;
    if (!op.generateFrom.empty() || !op.prefillFrom.empty()) {
      o["generate_from"] = op.generateFrom;
      o["prefill_from"] = op.prefillFrom;
    }
    o["kernel"] = op.kernel;
    o["inputs"] = op.inputs;
    o["outputs"] = op.outputs;
    o["weights"] = std::move(weights);
    o["weight_lists"] = std::move(lists);
    o["attrs"] = op.attrs.is_null() ? json::object() : op.attrs;
    ops.push_back(std::move(o));
  }
  json j = json::object();
  j["version"] = plan.version;
  j["architecture"] = plan.architecture;
  j["source"] = plan.source;
  j["values"] = std::move(values);
  j["tokens"] = plan.tokensValue;
  j["positions"] = plan.positionsValue;
  j["logits"] = plan.logitsValue;
  j["ops"] = std::move(ops);
  j["generate_bytes"] = plan.generateBytes;
  return j;
}

Result<Plan> planFromJson(const json &j, const std::string &displayName) {
  try {
    return Reader(displayName).read(j);
  } catch (const PlanError &e) {
    return Error{e.message};
  } catch (const std::exception &e) {
    return Error{displayName + ": " + e.what()};
  }
}

std::string serializePlan(const Plan &plan) {
  try {
    return planToJson(plan).dump(2) + "\n";
  } catch (const std::exception &e) {
    // Only invalid UTF-8 in a string can make dump() throw; replace it.
    return planToJson(plan).dump(2, ' ', false,
                                 json::error_handler_t::replace) +
           "\n";
  }
}

Result<Plan> parsePlan(const std::string &text,
                       const std::string &displayName) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error &e) {
    return Error{displayName + ": not valid JSON: " + e.what()};
  } catch (const std::exception &e) {
    return Error{displayName + ": " + e.what()};
  }
  return planFromJson(j, displayName);
}

} // namespace kt
