#include "hds/trainer/checkpoint.h"

#include <fcntl.h>
#include <google/protobuf/text_format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "hds/common/read_file.h"
#include "hds/config/config.h"
#include "hds/data/crc32.h"

namespace hds::trainer {
namespace fs = std::filesystem;
using hds::checkpoint::CheckpointMeta;

namespace {

// 2 adds metadata_crc32; format 1 (without it) is still read.
constexpr int kFormatVersion = 2;
constexpr int kOldestReadableFormat = 1;
constexpr const char* kModelFile = "model.pt";
constexpr const char* kOptimizerFile = "optimizer.pt";
constexpr const char* kStepPrefix = "step-";
constexpr const char* kTempPrefix = ".incomplete-";
// A corrupt checkpoint in the way of a new one of its step is kept under this prefix.
constexpr const char* kCorruptPrefix = "corrupt-";

std::string errno_text() { return std::strerror(errno); }

// fsync a file or directory so that a rename after it cannot expose unwritten data.
void sync_path(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw CheckpointError(path.string() + ": cannot open to sync: " + errno_text());
  const int rc = ::fsync(fd);
  const std::string why = rc != 0 ? errno_text() : "";
  ::close(fd);
  if (rc != 0) throw CheckpointError(path.string() + ": fsync failed: " + why);
}

std::string read_file(const fs::path& path) {
  try {
    return hds::common::read_whole_file(path.string());
  } catch (const hds::common::FileReadError& error) {
    throw CheckpointError(error.what());
  }
}

void write_file(const fs::path& path, const std::string& bytes) {
  try {
    hds::common::write_whole_file(path.string(), bytes);
  } catch (const hds::common::FileWriteError& error) {
    throw CheckpointError(error.what());
  }
}

// Writes `bytes` as `name` in `dir` and records its size and CRC-32 in `meta`.
void write_checked(CheckpointMeta& meta, const fs::path& dir, const std::string& name,
                   const std::string& bytes) {
  write_file(dir / name, bytes);
  auto* file = meta.add_files();
  file->set_name(name);
  file->set_size_bytes(bytes.size());
  file->set_crc32(hds::data::crc32_of(bytes.data(), bytes.size()));
}

// LibTorch's archive writer throws from a destructor when its file cannot be written (a full
// disk aborts the process), so archives are built in memory and written by write_file.
template <typename Value>
std::string serialize(const Value& value) {
  std::ostringstream bytes;
  torch::save(value, bytes);
  return bytes.str();
}

uint32_t metadata_crc(CheckpointMeta meta) {
  meta.clear_metadata_crc32();
  const std::string bytes = meta.SerializeAsString();
  return hds::data::crc32_of(bytes.data(), bytes.size());
}

// The step checkpoints under `root`, newest first (zero-padded step numbers sort by age).
std::vector<fs::path> step_checkpoints_newest_first(const fs::path& root) {
  std::vector<fs::path> steps;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(root, error)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_symlink() && entry.is_directory() && name.rfind(kStepPrefix, 0) == 0) {
      steps.push_back(entry.path());
    }
  }
  std::sort(steps.rbegin(), steps.rend());
  return steps;
}

// "" when the checkpoint in `dir` reads back whole, else why not.
std::string checkpoint_problem(const fs::path& dir) {
  try {
    read_checkpoint_meta(dir.string());
    return "";
  } catch (const CheckpointError& e) {
    return e.what();
  }
}

std::string step_name(int64_t global_step) {
  std::ostringstream name;
  name << kStepPrefix << std::setw(9) << std::setfill('0') << global_step;
  return name.str();
}

}  // namespace

// A checkpoints root holds a `latest` link; a checkpoint directory holds the metadata file.
std::string resolve_checkpoint_dir(const std::string& dir) {
  const fs::path path(dir);
  if (fs::exists(path / kCheckpointMetaFile)) return path.string();
  if (fs::exists(path / "latest")) return fs::canonical(path / "latest").string();
  if (fs::exists(path / "checkpoints" / "latest"))
    return fs::canonical(path / "checkpoints" / "latest").string();
  throw CheckpointError(dir + ": not a checkpoint (no " + kCheckpointMetaFile +
                        ") and no `latest` checkpoint link inside");
}

CheckpointStore::CheckpointStore(std::string root) : root_(std::move(root)) {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) throw CheckpointError(root_ + ": cannot create checkpoint directory: " + ec.message());
}

std::string CheckpointStore::save(HdsNet& model, torch::optim::Optimizer& optimizer,
                                  CheckpointMeta meta) {
  const fs::path final_dir = fs::path(root_) / step_name(meta.global_step());
  const fs::path temp_dir = fs::path(root_) / (kTempPrefix + step_name(meta.global_step()) + "-" +
                                               std::to_string(::getpid()));
  try {
    fs::remove_all(temp_dir);
    fs::create_directory(temp_dir);
    meta.set_format_version(kFormatVersion);
    meta.clear_files();
    write_checked(meta, temp_dir, kModelFile, serialize(model));
    write_checked(meta, temp_dir, kOptimizerFile, serialize(optimizer));
    meta.set_metadata_crc32(metadata_crc(meta));
    std::string text;
    google::protobuf::TextFormat::PrintToString(meta, &text);
    write_file(temp_dir / kCheckpointMetaFile, text);
    for (const char* name : {kModelFile, kOptimizerFile, kCheckpointMetaFile}) {
      sync_path(temp_dir / name);
    }
    sync_path(temp_dir);
    // A checkpoint of the same step exists when a resumed run stops again at once: replace it.
    // A corrupt one (the run resumed from an older one instead) is kept aside.
    if (fs::exists(final_dir) && !checkpoint_problem(final_dir).empty()) {
      fs::rename(final_dir, fs::path(root_) / (kCorruptPrefix + final_dir.filename().string() +
                                               "-" + std::to_string(std::time(nullptr))));
    }
    fs::remove_all(final_dir);
    fs::rename(temp_dir, final_dir);
    sync_path(root_);
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove_all(temp_dir, ignored);
    const std::string previous = latest();
    throw CheckpointError(
        "writing checkpoint " + final_dir.string() + " failed: " + e.what() +
        (previous.empty() ? "" : "; the previous checkpoint " + previous + " is intact"));
  }
  link("latest", final_dir.string());
  return final_dir.string();
}

void CheckpointStore::link(const std::string& name, const std::string& checkpoint_dir) {
  const fs::path link_path = fs::path(root_) / name;
  const fs::path temp_link =
      fs::path(root_) / (kTempPrefix + name + "-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove(temp_link, ec);
  // Relative targets keep a run directory movable.
  fs::create_directory_symlink(fs::path(checkpoint_dir).filename(), temp_link, ec);
  if (!ec) fs::rename(temp_link, link_path, ec);
  if (ec) {
    fs::remove(temp_link);
    throw CheckpointError(link_path.string() + ": cannot point at " + checkpoint_dir + ": " +
                          ec.message());
  }
  sync_path(root_);
}

void CheckpointStore::prune(int keep) {
  std::vector<fs::path> linked;
  for (const auto& entry : fs::directory_iterator(root_)) {
    if (entry.is_symlink()) linked.push_back(fs::read_symlink(entry.path()).filename());
  }
  const std::vector<fs::path> steps = step_checkpoints_newest_first(root_);
  for (size_t i = static_cast<size_t>(std::max(keep, 0)); i < steps.size(); ++i) {
    if (std::find(linked.begin(), linked.end(), steps[i].filename()) != linked.end()) continue;
    fs::remove_all(steps[i]);
  }
}

std::string CheckpointStore::latest() const {
  const fs::path link_path = fs::path(root_) / "latest";
  std::error_code ec;
  if (!fs::is_symlink(link_path, ec)) return "";
  return (fs::path(root_) / fs::read_symlink(link_path)).string();
}

CheckpointMeta read_checkpoint_meta(const std::string& dir) {
  const fs::path path(resolve_checkpoint_dir(dir));
  CheckpointMeta meta;
  const std::string text = read_file(path / kCheckpointMetaFile);
  if (!google::protobuf::TextFormat::ParseFromString(text, &meta)) {
    throw CheckpointError((path / kCheckpointMetaFile).string() + ": unreadable metadata");
  }
  if (meta.format_version() < kOldestReadableFormat || meta.format_version() > kFormatVersion) {
    throw CheckpointError((path / kCheckpointMetaFile).string() + ": format version " +
                          std::to_string(meta.format_version()) + ", this build reads " +
                          std::to_string(kOldestReadableFormat) + " to " +
                          std::to_string(kFormatVersion));
  }
  if (meta.format_version() >= 2 &&
      (!meta.has_metadata_crc32() || metadata_crc(meta) != meta.metadata_crc32())) {
    throw CheckpointError((path / kCheckpointMetaFile).string() +
                          ": corrupt (its fields differ from their CRC-32, metadata_crc32)");
  }
  for (const auto& file : meta.files()) {
    const fs::path file_path = path / file.name();
    const std::string bytes = read_file(file_path);
    if (bytes.size() != file.size_bytes() ||
        hds::data::crc32_of(bytes.data(), bytes.size()) != file.crc32()) {
      throw CheckpointError(file_path.string() + ": corrupt (size or CRC-32 differs from " +
                            kCheckpointMetaFile + ")");
    }
  }
  return meta;
}

hds::config::Config saved_config(const CheckpointMeta& meta, const std::string& dir,
                                 const std::vector<std::string>& overrides) {
  try {
    return hds::config::parse_config(meta.config_text(), dir + " (saved config)", overrides);
  } catch (const hds::config::ConfigError& error) {
    throw CheckpointError(error.what());
  }
}

CheckpointMeta load_checkpoint(const std::string& dir, HdsNet& model,
                               torch::optim::Optimizer* optimizer) {
  const fs::path path(resolve_checkpoint_dir(dir));
  CheckpointMeta meta = read_checkpoint_meta(path.string());
  try {
    torch::load(model, (path / kModelFile).string());
    if (optimizer != nullptr) torch::load(*optimizer, (path / kOptimizerFile).string());
  } catch (const c10::Error& e) {
    throw CheckpointError(path.string() +
                          ": does not fit this model: " + e.what_without_backtrace());
  }
  return meta;
}

std::string newest_intact_checkpoint(const std::string& root) {
  for (const fs::path& step : step_checkpoints_newest_first(root)) {
    if (checkpoint_problem(step).empty()) return step.string();
  }
  return "";
}

AutoResume choose_auto_resume(const std::string& root) {
  const fs::path latest_link = fs::path(root) / "latest";
  std::error_code error;
  const bool linked = fs::is_symlink(latest_link, error);
  const std::vector<fs::path> steps = step_checkpoints_newest_first(root);
  if (!linked && steps.empty()) return {};  // a fresh run
  std::string why_not_latest;
  if (!linked) {
    why_not_latest = latest_link.string() + " is missing";
  } else {
    const fs::path target = fs::path(root) / fs::read_symlink(latest_link, error);
    if (!fs::exists(target, error)) {
      why_not_latest =
          latest_link.string() + " points at " + target.string() + ", which is missing";
    } else if (const std::string problem = checkpoint_problem(target); !problem.empty()) {
      why_not_latest = problem;
    } else {
      return {target.string(), ""};
    }
  }
  std::string problems;
  for (const fs::path& step : steps) {
    const std::string problem = checkpoint_problem(step);
    if (problem.empty()) {
      return {step.string(), "--resume auto: " + why_not_latest + "; resuming from " +
                                 step.string() + ", the newest intact checkpoint"};
    }
    problems += "; " + problem;
  }
  throw CheckpointError("--resume auto: " + why_not_latest + problems +
                        "; no intact checkpoint is left in " + root +
                        " (nothing was started or overwritten; start afresh in another "
                        "train.output_dir)");
}

std::string cpu_rng_state() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  const auto state = generator.get_state();
  return std::string(reinterpret_cast<const char*>(state.data_ptr<uint8_t>()),
                     static_cast<size_t>(state.numel()));
}

void set_cpu_rng_state(const std::string& bytes) {
  auto state = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  std::memcpy(state.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

}  // namespace hds::trainer
