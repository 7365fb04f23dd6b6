//===- Tensor.h - runtime tensors, devices and weight files -----*- C++ -*-===//
//
// Tensor: a typed, shaped block of memory on a device, either owned
// (allocated on the host through HostMemory, NUMA-aware) or a view of memory
// someone else keeps alive (an mmap'd safetensors file). Row-major.
//
// WeightFiles: the safetensors files of a model directory mapped into
// memory once (read-only, MAP_PRIVATE), handing out zero-copy Tensor views.
//
//===----------------------------------------------------------------------===//

#ifndef KT_RUNTIME_TENSOR_H
#define KT_RUNTIME_TENSOR_H

#include "kt/Runtime/Safetensors.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kt {

/// A device a tensor lives on: "cpu" or "cuda:N".
struct Device {
  enum Kind { CPU, CUDA } kind = CPU;
  int index = 0;
  static Result<Device> parse(const std::string &text);
  std::string str() const;
  bool operator==(const Device &o) const = default;
};

class Tensor {
public:
  Tensor() = default;
  /// Zero-filled host tensor, allocated with HostMemory on `numaNode`
  /// (-1: no binding).
  static Tensor zeros(DType dtype, std::vector<int64_t> shape,
                      int numaNode = -1);
  /// A view of `data`, kept alive by `owner` (may be null when the caller
  /// guarantees the lifetime).
  static Tensor view(DType dtype, std::vector<int64_t> shape, void *data,
                     std::shared_ptr<const void> owner, Device device = {});

  DType dtype() const { return dtype_; }
  const std::vector<int64_t> &shape() const { return shape_; }
  const Device &device() const { return device_; }
  int64_t numElements() const;
  uint64_t numBytes() const { return numElements() * dtypeSize(dtype_); }
  /// Size of the last dimension (1 for a scalar) and the product of the
  /// others: the matrix view every runtime op uses.
  int64_t cols() const { return shape_.empty() ? 1 : shape_.back(); }
  int64_t rows() const { return cols() ? numElements() / cols() : 0; }
  bool defined() const { return data_ != nullptr || numElements() == 0; }

  void *raw() const { return data_; }
  template <class T> T *data() const { return static_cast<T *>(data_); }

  /// An owned host copy converted to `to` (F32, BF16 or F16 from any of
  /// F32/BF16/F16/F64). Errors name `what` for unsupported dtypes.
  Result<Tensor> convertTo(DType to, const std::string &what) const;

private:
  DType dtype_ = DType::F32;
  std::vector<int64_t> shape_;
  Device device_;
  void *data_ = nullptr;
  std::shared_ptr<const void> owner_;
};

/// Host memory for activations, caches and converted weights. With hwloc,
/// pages are bound to a NUMA node when one is given; otherwise (or without
/// NUMA) plain aligned allocation. 64-byte aligned.
struct HostMemory {
  static std::shared_ptr<void> allocate(uint64_t bytes, int numaNode = -1);
  /// NUMA nodes of this machine (1 when hwloc reports none).
  static int numaNodes();
  /// Physical cores (hwloc; 0 when unknown).
  static int cores();
  /// Binds the calling thread to core `core` (of cores()); false when
  /// hwloc is absent or refuses.
  static bool pinCurrentThread(int core);
};

/// The weight files of a model directory, mmap'd on first use.
class WeightFiles {
public:
  explicit WeightFiles(ModelDir dir);
  ~WeightFiles();
  WeightFiles(const WeightFiles &) = delete;
  WeightFiles &operator=(const WeightFiles &) = delete;

  const ModelDir &dir() const { return dir_; }
  /// A zero-copy view of tensor `name`, checked against the expected dtype
  /// and shape when given (empty shape = any). Errors name file and tensor.
  Result<Tensor> get(const std::string &name, const std::string &file,
                     std::optional<DType> dtype,
                     const std::vector<int64_t> &shape);

private:
  struct Mapping;
  ModelDir dir_;
  std::map<std::string, std::shared_ptr<Mapping>> maps_;
};

} // namespace kt

#endif // KT_RUNTIME_TENSOR_H
