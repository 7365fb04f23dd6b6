//===- Tensor.cpp - runtime tensors, host memory, mmap'd weights ---------===//

#include "kt/Runtime/Tensor.h"
#include "kt/Runtime/Kernels/Moe.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef KT_HAVE_HWLOC
#include <hwloc.h>
#endif

namespace kt {

Result<Device> Device::parse(const std::string &text) {
  if (text == "cpu")
    return Device{CPU, 0};
  if (text == "cuda")
    return Device{CUDA, 0};
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5 && text.size() < 9) {
    int index = 0;
    for (char c : text.substr(5)) {
      if (c < '0' || c > '9')
        return Error{"bad device '" + text + "' (expected cpu or cuda:N)"};
      index = index * 10 + (c - '0');
    }
    return Device{CUDA, index};
  }
  return Error{"bad device '" + text + "' (expected cpu or cuda:N)"};
}

std::string Device::str() const {
  return kind == CPU ? "cpu" : "cuda:" + std::to_string(index);
}

int64_t Tensor::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape_)
    n *= d;
  return n;
}

Tensor Tensor::zeros(DType dtype, std::vector<int64_t> shape, int numaNode) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  uint64_t bytes = t.numBytes();
  auto mem = HostMemory::allocate(bytes ? bytes : 1, numaNode);
  std::memset(mem.get(), 0, bytes);
  t.data_ = mem.get();
  t.owner_ = std::move(mem);
  return t;
}

Tensor Tensor::view(DType dtype, std::vector<int64_t> shape, void *data,
                    std::shared_ptr<const void> owner, Device device) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = data;
  t.owner_ = std::move(owner);
  t.device_ = device;
  return t;
}

static bool loadElement(DType t, const void *p, int64_t i, float &out) {
  switch (t) {
  case DType::F32:
    out = static_cast<const float *>(p)[i];
    return true;
  case DType::F64:
    out = static_cast<float>(static_cast<const double *>(p)[i]);
    return true;
  case DType::BF16:
    out = kernels::bf16ToF32(static_cast<const uint16_t *>(p)[i]);
    return true;
  case DType::F16:
    out = static_cast<float>(static_cast<const _Float16 *>(p)[i]);
    return true;
  default:
    return false;
  }
}

Result<Tensor> Tensor::convertTo(DType to, const std::string &what) const {
  if (to != DType::F32 && to != DType::BF16 && to != DType::F16)
    return Error{what + ": cannot convert to " + std::string(dtypeName(to))};
  float probe;
  if (numElements() && !loadElement(dtype_, data_, 0, probe))
    return Error{what + ": dtype " + std::string(dtypeName(dtype_)) +
                 " is not supported by the CPU runtime (F32, BF16, F16, F64)"};
  Tensor out = zeros(to, shape_);
  int64_t n = numElements();
  for (int64_t i = 0; i < n; ++i) {
    float v = 0;
    loadElement(dtype_, data_, i, v);
    if (to == DType::F32)
      out.data<float>()[i] = v;
    else if (to == DType::BF16)
      out.data<uint16_t>()[i] = kernels::f32ToBf16(v);
    else
      out.data<_Float16>()[i] = static_cast<_Float16>(v);
  }
  return out;
}

//===----------------------------------------------------------------------===//
// HostMemory
//===----------------------------------------------------------------------===//

#ifdef KT_HAVE_HWLOC
namespace {
struct Topology {
  hwloc_topology_t topo = nullptr;
  Topology() {
    if (hwloc_topology_init(&topo) != 0 || hwloc_topology_load(topo) != 0)
      topo = nullptr;
  }
  ~Topology() {
    if (topo)
      hwloc_topology_destroy(topo);
  }
};
Topology &topology() {
  static Topology t;
  return t;
}
} // namespace
#endif

int HostMemory::numaNodes() {
#ifdef KT_HAVE_HWLOC
  if (auto topo = topology().topo) {
    int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    return n > 0 ? n : 1;
  }
#endif
  return 1;
}

int HostMemory::cores() {
#ifdef KT_HAVE_HWLOC
  if (auto topo = topology().topo)
    return std::max(0, hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE));
#endif
  return 0;
}

bool HostMemory::pinCurrentThread(int core) {
#ifdef KT_HAVE_HWLOC
  if (auto topo = topology().topo) {
    hwloc_obj_t obj = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, core);
    return obj && hwloc_set_cpubind(topo, obj->cpuset,
                                    HWLOC_CPUBIND_THREAD) == 0;
  }
#else
  (void)core;
#endif
  return false;
}

std::shared_ptr<void> HostMemory::allocate(uint64_t bytes, int numaNode) {
#ifdef KT_HAVE_HWLOC
  if (numaNode >= 0 && numaNodes() > 1) {
    hwloc_topology_t topo = topology().topo;
    hwloc_obj_t node =
        hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, numaNode);
    if (node) {
      void *p = hwloc_alloc_membind(topo, bytes, node->nodeset,
                                    HWLOC_MEMBIND_BIND,
                                    HWLOC_MEMBIND_BYNODESET);
      if (p)
        return std::shared_ptr<void>(
            p, [topo, bytes](void *q) { hwloc_free(topo, q, bytes); });
    }
  }
#else
  (void)numaNode;
#endif
  uint64_t rounded = (bytes + 63) / 64 * 64;
  void *p = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!p)
    throw std::bad_alloc();
  return std::shared_ptr<void>(p, [](void *q) { std::free(q); });
}

//===----------------------------------------------------------------------===//
// WeightFiles
//===----------------------------------------------------------------------===//

struct WeightFiles::Mapping {
  void *base = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (base != MAP_FAILED)
      munmap(base, size);
  }
};

WeightFiles::WeightFiles(ModelDir dir) : dir_(std::move(dir)) {}
WeightFiles::~WeightFiles() = default;

Result<Tensor> WeightFiles::get(const std::string &name,
                                const std::string &file,
                                std::optional<DType> dtype,
                                const std::vector<int64_t> &shape) {
  const TensorInfo *info = dir_.find(name);
  if (!info)
    return Error{(file.empty() ? dir_.path : file) + ": tensor '" + name +
                 "' is missing"};
  if (!file.empty() && info->file != file)
    return Error{file + ": tensor '" + name + "' is stored in " + info->file +
                 " instead"};
  if (dtype && info->dtype != *dtype)
    return Error{info->file + ": tensor '" + name + "' has dtype " +
                 std::string(dtypeName(info->dtype)) + ", the plan expects " +
                 std::string(dtypeName(*dtype))};
  if (!shape.empty() && info->shape != shape)
    return Error{info->file + ": tensor '" + name + "' has shape " +
                 formatShape(info->shape) + ", the plan expects " +
                 formatShape(shape)};
  auto &m = maps_[info->file];
  if (!m) {
    std::string path = dir_.filePath(*info);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return Error{info->file + ": cannot open: " + std::strerror(errno)};
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      ::close(fd);
      return Error{info->file + ": cannot stat: " + std::strerror(errno)};
    }
    auto mapping = std::make_shared<Mapping>();
    mapping->size = static_cast<size_t>(st.st_size);
    if (mapping->size)
      mapping->base =
          mmap(nullptr, mapping->size, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (mapping->size && mapping->base == MAP_FAILED)
      return Error{info->file + ": cannot mmap: " + std::strerror(errno)};
    m = mapping;
  }
  // The header check guaranteed the range lies inside the file as it was
  // then; re-check against the mapping in case the file shrank since.
  if (info->fileOffset() + info->numBytes() > m->size)
    return Error{info->file + ": tensor '" + name +
                 "' lies beyond the end of the file (truncated?)"};
  auto *bytes = static_cast<char *>(m->base) + info->fileOffset();
  std::shared_ptr<const void> owner(m, m.get());
  return Tensor::view(info->dtype, info->shape, bytes, owner);
}

} // namespace kt
