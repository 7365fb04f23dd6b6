//===- OutputDir.cpp - kt-quant's output directory -----------------------===//

#include "OutputDir.h"

#include "kt/Runtime/PackedExperts.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <unistd.h>

namespace fs = std::filesystem;

namespace ktquant {

/// Whether `name` is something kt-quant writes (layer files, the manifest,
/// and their temporary files).
static bool isOurs(const std::string &name) {
  auto endsWith = [&](const char *suffix) {
    size_t n = std::strlen(suffix);
    return name.size() >= n && name.compare(name.size() - n, n, suffix) == 0;
  };
  return name == kt::kExpertsManifestName ||
         name == std::string(kt::kExpertsManifestName) + ".tmp" ||
         endsWith(".ktq") || endsWith(".ktq.tmp");
}

std::optional<std::string> OutputDir::prepare(const std::string &path) {
  path_ = path;
  std::error_code ec;
  if (fs::exists(path, ec)) {
    if (!fs::is_directory(path, ec))
      return path + ": exists and is not a directory";
    std::vector<fs::path> old;
    for (const auto &entry : fs::directory_iterator(path, ec)) {
      std::string name = entry.path().filename().string();
      if (!isOurs(name) || !entry.is_regular_file())
        return path +
               ": not empty and not a kt-quant output directory "
               "(found '" +
               name + "'); choose another --out";
      old.push_back(entry.path());
    }
    if (ec)
      return path + ": cannot list: " + ec.message();
    // The manifest first: from here on the directory does not look valid.
    std::stable_partition(old.begin(), old.end(), [](const fs::path &p) {
      return p.filename() == kt::kExpertsManifestName;
    });
    for (const fs::path &p : old)
      if (!fs::remove(p, ec) && ec)
        return p.string() + ": cannot remove: " + ec.message();
  } else {
    if (!fs::create_directories(path, ec))
      return "cannot create " + path + ": " +
             (ec ? ec.message() : std::string("unknown error"));
    created_ = true;
  }
  // Fail now rather than after the first layer has been packed.
  std::string probe = file(".kt-quant-probe");
  int fd =
      ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::string why = std::strerror(errno);
    discard();
    return path + ": not writable: " + why;
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return std::nullopt;
}

std::string OutputDir::file(const std::string &name) const {
  return path_ + "/" + name;
}

void OutputDir::discard() {
  std::error_code ec;
  fs::remove(file(kt::kExpertsManifestName), ec);
  fs::remove(file(std::string(kt::kExpertsManifestName) + ".tmp"), ec);
  for (const std::string &name : written_) {
    fs::remove(file(name), ec);
    fs::remove(file(name + ".tmp"), ec);
  }
  written_.clear();
  if (created_)
    fs::remove(path_, ec); // only if empty
}

} // namespace ktquant
