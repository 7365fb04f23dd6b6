//===- OutputDir.h - kt-quant's output directory ---------------*- C++ -*-===//
//
// Made ready before any layer is packed (created, or a previous kt-quant
// output in it cleared, its manifest first; any other content refused), and
// on failure emptied of what this run wrote, so an interrupted or failed
// run never leaves a directory with a manifest.json.
//
//===----------------------------------------------------------------------===//

#ifndef KT_TOOLS_KTQUANT_OUTPUTDIR_H
#define KT_TOOLS_KTQUANT_OUTPUTDIR_H

#include <optional>
#include <string>
#include <vector>

namespace ktquant {

class OutputDir {
public:
  /// Creates `path` (and its parents) or clears a previous kt-quant output
  /// there. Returns an error message on failure.
  std::optional<std::string> prepare(const std::string &path);
  /// path/name.
  std::string file(const std::string &name) const;
  /// Records a file this run wrote (removed by discard()).
  void wrote(const std::string &name) { written_.push_back(name); }
  /// Removes the files this run wrote and, if this run created it, the
  /// directory.
  void discard();

private:
  std::string path_;
  bool created_ = false;
  std::vector<std::string> written_;
};

} // namespace ktquant

#endif
