//===- PlaceDevices.cpp - resolve devices, insert transfers ---------------===//
#include "kt/Transforms/Passes.h"
#include "kt/Transforms/Rules.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"

namespace mlir::kt {
#define GEN_PASS_DEF_PLACEDEVICES
#include "kt/Transforms/Passes.h.inc"
} // namespace mlir::kt

using namespace mlir;
using namespace mlir::kt;

namespace {
struct Devices {
  std::string generate, prefill;
  bool operator!=(const Devices &o) const {
    return generate != o.generate || prefill != o.prefill;
  }
};

std::string str(Operation *op, StringRef key) {
  auto a = op->getAttrOfType<StringAttr>(key);
  return a ? a.getValue().str() : std::string();
}

/// Where `op` computes: its own devices for a module op, else its container's.
Devices computeDevices(Operation *op) {
  Operation *m = isa<ModuleOpInterface>(op) ? op : parentModule(op).getOperation();
  if (!m)
    return {"", ""};
  return {str(m, "generate_device"), str(m, "prefill_device")};
}

/// Containers whose inputs and outputs pass through to their children:
/// values cross their boundary without a transfer, and a transfer is made
/// where a child uses a value that lives elsewhere.
bool isPassThrough(Operation *op) {
  return isa_and_nonnull<ModuleContainerOp, MlaOp>(op);
}

/// Where `v` lives: a container's block argument where the container's
/// operand lives (the root's inputs where the root computes); a container's
/// result where the yielded value lives; a module result on the module's
/// `out_device` when set (the experts' output device), else where its
/// producer computes.
Devices valueDevices(Value v) {
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    Operation *owner = arg.getOwner()->getParentOp();
    if (isPassThrough(owner) && owner->getNumOperands() > arg.getArgNumber())
      return valueDevices(owner->getOperand(arg.getArgNumber()));
    return computeDevices(owner);
  }
  Operation *def = v.getDefiningOp();
  if (isPassThrough(def)) {
    auto yield = cast<YieldOp>(def->getRegion(0).front().getTerminator());
    return valueDevices(yield.getOperand(cast<OpResult>(v).getResultNumber()));
  }
  Devices d = computeDevices(def);
  std::string out = str(def, "out_device");
  if (!out.empty())
    d.generate = d.prefill = out;
  return d;
}

struct PlaceDevicesPass : public mlir::kt::impl::PlaceDevicesBase<PlaceDevicesPass> {
  using PlaceDevicesBase::PlaceDevicesBase;

  void runOnOperation() override {
    if (!::kt::rules::isValidDevice(defaultDevice)) {
      emitError(getOperation().getLoc())
          << "--default-device '" << defaultDevice
          << "' is not a device (cpu, cuda, cuda:N)";
      return signalPassFailure();
    }
    std::string root = ::kt::rules::normalizeDevice(defaultDevice);
    Builder b(&getContext());
    walkModules(getOperation(), [&](ModuleOpInterface m) {
      Operation *op = m.getOperation();
      std::string gen = str(op, "generate_device");
      std::string pre = str(op, "prefill_device");
      ModuleOpInterface parent = parentModule(op);
      std::string inherited = parent ? str(parent, "generate_device") : root;
      StringRef placedBy = "rule";
      if (gen.empty() && pre.empty()) {
        gen = pre = inherited;
        placedBy = parent ? "inherited" : "default";
      } else if (gen.empty()) {
        gen = inherited;
      } else if (pre.empty()) {
        pre = gen;
      }
      op->setAttr("generate_device", b.getStringAttr(gen));
      op->setAttr("prefill_device", b.getStringAttr(pre));
      op->setAttr("kt.placed_by", b.getStringAttr(placedBy));
    });
    insertTransfers();
    checkTransferMaps();
  }

  void insertTransfers() {
    // Each (value, destination devices) pair gets one transfer per block.
    DenseMap<std::pair<Value, Block *>, SmallVector<TransferOp>> cache;
    OpBuilder b(&getContext());
    getOperation().walk([&](Operation *op) {
      if (isa<TransferOp, YieldOp>(op) || isPassThrough(op))
        return;
      Devices to = computeDevices(op);
      if (to.generate.empty())
        return;
      for (OpOperand &use : op->getOpOperands()) {
        Value v = use.get();
        Devices from = valueDevices(v);
        if (from.generate.empty() || !(from != to))
          continue;
        auto &existing = cache[{v, op->getBlock()}];
        TransferOp transfer;
        for (TransferOp t : existing)
          if (t.getGenerateTo() == to.generate && t.getPrefillTo() == to.prefill)
            transfer = t;
        if (!transfer) {
          b.setInsertionPoint(op);
          transfer = b.create<TransferOp>(op->getLoc(), v, from.generate,
                                          to.generate, from.prefill, to.prefill);
          existing.push_back(transfer);
        }
        use.set(transfer.getResult());
      }
    });
  }

  /// Upstream's KDeepseekV2Model transfer_map {layer: device} says where
  /// the hidden state moves; kt derives transfers from placement, so only
  /// check the two agree.
  void checkTransferMaps() {
    walkModules(getOperation(), [&](ModuleOpInterface m) {
      auto kwargs = m->getAttrOfType<DictionaryAttr>("kwargs");
      auto map = kwargs ? kwargs.getAs<DictionaryAttr>("transfer_map") : nullptr;
      if (!map)
        return;
      for (NamedAttribute entry : map) {
        auto dev = dyn_cast<StringAttr>(entry.getValue());
        std::string layer =
            (m.getModuleName() + ".layers." + entry.getName().getValue()).str();
        bool found = false;
        walkModules(m, [&](ModuleOpInterface child) {
          if (child.getModuleName() != layer)
            return;
          found = true;
          std::string placed = str(child, "generate_device");
          if (dev && ::kt::rules::normalizeDevice(dev.getValue().str()) != placed)
            emitWarning(m->getLoc()) << "transfer_map moves the hidden state to "
                             << dev.getValue() << " at '" << layer
                             << "', but the rules place that layer on "
                             << placed;
        });
        if (!found)
          emitWarning(m->getLoc()) << "transfer_map names layer "
                           << entry.getName().getValue()
                           << ", which the model does not have";
      }
    });
  }
};
} // namespace
