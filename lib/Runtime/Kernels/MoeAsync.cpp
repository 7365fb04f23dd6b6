//===- MoeAsync.cpp - submitMoe / MoeHandle
//--------------------------------===//
//
// A submitted call runs on the pool's driver thread (ThreadPool::submit),
// which takes part in the pool's run()s as thread 0, so the caller's thread
// is free. The handle owns the std::future of the job.
//
//===----------------------------------------------------------------------===//

#include "MoeInternal.h"
#include "kt/Runtime/Kernels/NumaMoe.h"

#include <chrono>

namespace kt::kernels {

MoeHandle &MoeHandle::operator=(MoeHandle &&o) noexcept {
  if (this != &o) {
    if (f_.valid())
      f_.wait();
    f_ = std::move(o.f_);
  }
  return *this;
}

MoeHandle::~MoeHandle() {
  if (f_.valid())
    f_.wait(); // the job may still use the caller's buffers
}

bool MoeHandle::ready() const {
  return f_.valid() &&
         f_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

void MoeHandle::wait() {
  if (!f_.valid())
    throw std::logic_error("MoeHandle::wait: no pending call");
  f_.get(); // rethrows
}

MoeHandle submitMoe(const MoeWeights &w, const MoeArgs &args,
                    const MoeOptions &opts) {
  ThreadPool *pool =
      opts.pool ? opts.pool : &detail::sharedPool(std::max(1, opts.threads));
  MoeOptions o = opts;
  o.pool = pool;
  return MoeHandle(pool->submit([&w, args, o] { moeForward(w, args, o); }));
}

MoeHandle submitMoe(const NumaMoe &w, const MoeArgs &args, NumaPool &pools,
                    const MoeOptions &opts) {
  NumaPool *p = &pools;
  return MoeHandle(pools.pool(0).submit(
      [&w, args, p, opts] { moeForward(w, args, *p, opts); }));
}

} // namespace kt::kernels
