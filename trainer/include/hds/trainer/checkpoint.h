// Checkpoints (docs/design.md §5): one directory each under <output_dir>/checkpoints, written under
// a temporary name, fsynced, then renamed, so a crash or a full disk never leaves a half-written
// checkpoint under a real name. `latest`, `best-dice` and `best-accuracy` are symlinks replaced
// atomically. Not thread-safe: one writer (rank 0) per directory.
#pragma once

#include <torch/torch.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "checkpoint.pb.h"
#include "config.pb.h"
#include "hds/trainer/model.h"

namespace hds::trainer {

// Any checkpoint problem; what() names the directory or file and the problem.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The metadata file's name inside a checkpoint directory.
inline constexpr const char* kCheckpointMetaFile = "checkpoint.pbtxt";

class CheckpointStore {
 public:
  // `root` is created if missing.
  explicit CheckpointStore(std::string root);

  // Writes model, optimizer and `meta` (file checksums filled in) as a new checkpoint named for
  // its global step; points `latest` at it; returns its path. On failure removes the partial
  // directory and throws CheckpointError; earlier checkpoints stay intact.
  std::string save(HdsNet& model, torch::optim::Optimizer& optimizer,
                   hds::checkpoint::CheckpointMeta meta);

  // Points symlink `name` (e.g. "best-dice") at `checkpoint_dir`, atomically.
  void link(const std::string& name, const std::string& checkpoint_dir);

  // Removes the oldest step checkpoints beyond `keep`, never one a symlink points at.
  void prune(int keep);

  // Target of `latest`, or "" when there is none.
  std::string latest() const;
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

// The checkpoint directory `dir` names: itself, else the target of `latest` in it or in its
// checkpoints/ folder (a run's checkpoints root, a run's output folder). Throws CheckpointError
// when it names none.
std::string resolve_checkpoint_dir(const std::string& dir);

// Reads the checkpoint in `dir` into `model` (and `optimizer` when given) after checking every
// file against the checksums in its metadata; returns the metadata. `dir` may be a checkpoint
// directory or a run's checkpoints root (then `latest` is used).
hds::checkpoint::CheckpointMeta load_checkpoint(const std::string& dir, HdsNet& model,
                                                torch::optim::Optimizer* optimizer);

// Reads and checks only the metadata (e.g. to rebuild the model from its config text).
hds::checkpoint::CheckpointMeta read_checkpoint_meta(const std::string& dir);

// The configuration a checkpoint was trained with (its metadata's config text), as the loader
// reads it, with `overrides` (--set) applied. Throws CheckpointError naming `dir` when the text no
// longer parses or validates.
hds::config::Config saved_config(const hds::checkpoint::CheckpointMeta& meta,
                                 const std::string& dir,
                                 const std::vector<std::string>& overrides = {});

// The newest step checkpoint under the checkpoints root `root` that reads back whole (every file
// and the metadata against their CRC-32); "" when there is none.
std::string newest_intact_checkpoint(const std::string& root);

// What `--resume auto` resumes in the checkpoints root `root`: the checkpoint `latest` names when
// it is intact; else the newest intact step checkpoint, with `note` saying why (the others stay,
// a corrupt one is moved aside as corrupt-step-... once a new checkpoint of its step is written);
// nothing (a fresh start) when `root` holds neither a `latest` link nor a step checkpoint. Throws
// CheckpointError naming each checkpoint's problem when there are some but none is intact:
// progress is never discarded silently.
struct AutoResume {
  std::string checkpoint;  // "" for a fresh start
  std::string note;        // "" unless it is not `latest`'s target
};
AutoResume choose_auto_resume(const std::string& root);

// The CPU generator's state (dropout masks, initialisation) as bytes, and back.
std::string cpu_rng_state();
void set_cpu_rng_state(const std::string& state);

}  // namespace hds::trainer
