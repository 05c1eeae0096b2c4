// The processes of a data-parallel job (docs/design.md §5). Started by mpirun or `srun --mpi=pmix`,
// the trainer is one rank of an MPI job: rank and world size from MPI_COMM_WORLD, the local rank
// (the GPU to use) from the ranks sharing this node. Started plainly it is a world of one that
// never calls MPI, so single-process runs need no launcher.
//
// Threading: MPI is initialised with at least MPI_THREAD_SERIALIZED. The gradient sync's
// communication thread and the training loop both call MPI, never at the same time (the loop
// waits for the sync to finish before its next collective).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace hds::trainer {

// A failed MPI call or an impossible world (e.g. MPI without thread support).
class WorldError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// A collective that failed (a peer died or its link broke): hds-trainer exits kExitRankLost.
class CollectiveError : public WorldError {
 public:
  using WorldError::WorldError;
};

// Told of each collective a World runs, from the thread that runs it (the watchdog, watchdog.h).
// `what` names it for reports ("step agreement", "bucket 3/12 all-reduce").
class CollectiveObserver {
 public:
  virtual ~CollectiveObserver() = default;
  virtual void collective_started(const char* what) = 0;
  virtual void collective_finished() = 0;
};

class World {
 public:
  // A world of one: no MPI.
  World();
  // Initialises MPI when this process was started by an MPI launcher (OMPI_COMM_WORLD_SIZE,
  // PMIX_RANK or PMI_RANK in the environment), else returns a world of one.
  static std::unique_ptr<World> from_environment();
  // True when the environment says an MPI launcher started this process.
  static bool launched_by_mpi();

  World(const World&) = delete;
  World& operator=(const World&) = delete;
  // Finalises MPI when this world initialised it.
  ~World();

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  bool uses_mpi() const { return uses_mpi_; }
  bool is_root() const { return rank_ == 0; }
  // "rank 1/4" style, for messages.
  std::string describe() const;
  // This launch of the ranks, the same on every rank and new for each mpirun or srun step (the
  // PMIx namespace, else Slurm's job and step ids; with a requeued job's restart count);
  // "pid-<pid>" in a world of one.
  const std::string& instance() const { return instance_; }

  // Collectives over every rank (no-ops in a world of one), named `what` for the observer.
  // Throw CollectiveError when MPI reports a failure.
  int64_t sum(int64_t value, const char* what = "sum") const;
  bool any(bool value, const char* what = "any") const;
  // In-place sum of `count` floats.
  void sum_floats(float* data, size_t count, const char* what = "all-reduce") const;
  // Copies `bytes` bytes from rank 0's `data` into every other rank's.
  void broadcast_bytes(void* data, size_t bytes, const char* what = "broadcast") const;
  void barrier(const char* what = "barrier") const;
  // From now on every collective is reported to `observer` (null: none). Observing does not
  // change what the world does, hence const; call while no collective runs.
  void observe(CollectiveObserver* observer) const { observer_ = observer; }
  // Ends every rank of the job now with `exit_code` (MPI_Abort; a world of one _Exits). Use
  // after an error on one rank: the others may be waiting in a collective that will never
  // complete. Safe from any thread.
  [[noreturn]] void abort(int exit_code) const;

 private:
  bool uses_mpi_ = false;
  int rank_ = 0;
  int size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
  std::string instance_;
  mutable CollectiveObserver* observer_ = nullptr;
};

}  // namespace hds::trainer
