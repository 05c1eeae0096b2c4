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

class World {
 public:
  // A world of one: no MPI.
  World() = default;
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

  // Collectives over every rank (no-ops in a world of one).
  int64_t sum(int64_t value) const;
  bool any(bool value) const;
  // In-place sum of `count` floats.
  void sum_floats(float* data, size_t count) const;
  // Copies `bytes` bytes from rank 0's `data` into every other rank's.
  void broadcast_bytes(void* data, size_t bytes) const;
  void barrier() const;
  // Ends every rank of the job now with `exit_code` (MPI_Abort). Use after an error on one rank:
  // the others may be waiting in a collective that will never complete.
  [[noreturn]] void abort(int exit_code) const;

 private:
  bool uses_mpi_ = false;
  int rank_ = 0;
  int size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
};

}  // namespace hds::trainer
