#include "hds/trainer/world.h"

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>

namespace hds::trainer {

namespace {

// MPI counts are ints: larger buffers go in pieces of this many elements.
constexpr size_t kMaxCount = size_t{1} << 30;

std::string error_text(int code, const char* call) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(call) + " failed: " + std::string(text, length);
}

void check(int code, const char* call) {
  if (code != MPI_SUCCESS) throw WorldError(error_text(code, call));
}

// Runs one collective, telling the observer (if any) before and after.
template <typename Call>
void collective(CollectiveObserver* observer, const char* what, const char* call, Call run) {
  if (observer) observer->collective_started(what);
  const int code = run();
  if (observer) observer->collective_finished();
  if (code != MPI_SUCCESS) {
    throw CollectiveError(std::string(what) + ": " + error_text(code, call));
  }
}

std::string launch_instance() {
  std::string instance;
  for (const char* name : {"PMIX_NAMESPACE", "OMPI_MCA_ess_base_jobid"}) {
    if (const char* value = std::getenv(name); value && instance.empty()) instance = value;
  }
  const char* job = std::getenv("SLURM_JOB_ID");
  const char* step = std::getenv("SLURM_STEP_ID");
  if (instance.empty() && job && step) instance = std::string("slurm-") + job + "." + step;
  if (instance.empty()) return "pid-" + std::to_string(getpid());
  // A requeued Slurm job numbers its steps (and PMIx namespaces) afresh.
  if (const char* restarts = std::getenv("SLURM_RESTART_COUNT")) {
    instance += std::string("/restart-") + restarts;
  }
  return instance;
}

}  // namespace

World::World() : instance_(launch_instance()) {}

bool World::launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

std::unique_ptr<World> World::from_environment() {
  auto world = std::make_unique<World>();
  if (!launched_by_mpi()) return world;

  int provided = MPI_THREAD_SINGLE;
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
  world->uses_mpi_ = true;
  // Errors come back as codes (and become exceptions) instead of killing the job silently.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  if (provided < MPI_THREAD_SERIALIZED) {
    throw WorldError("this MPI library offers thread level " + std::to_string(provided) +
                     "; the trainer needs MPI_THREAD_SERIALIZED or better");
  }
  check(MPI_Comm_rank(MPI_COMM_WORLD, &world->rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &world->size_), "MPI_Comm_size");
  MPI_Comm node;
  check(
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world->rank_, MPI_INFO_NULL, &node),
      "MPI_Comm_split_type");
  check(MPI_Comm_rank(node, &world->local_rank_), "MPI_Comm_rank (node)");
  check(MPI_Comm_size(node, &world->local_size_), "MPI_Comm_size (node)");
  MPI_Comm_free(&node);
  return world;
}

World::~World() {
  if (!uses_mpi_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

std::string World::describe() const {
  return "rank " + std::to_string(rank_) + "/" + std::to_string(size_);
}

int64_t World::sum(int64_t value, const char* what) const {
  if (!uses_mpi_) return value;
  int64_t total = 0;
  collective(observer_, what, "MPI_Allreduce", [&] {
    return MPI_Allreduce(&value, &total, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  });
  return total;
}

bool World::any(bool value, const char* what) const { return sum(value ? 1 : 0, what) > 0; }

void World::sum_floats(float* data, size_t count, const char* what) const {
  if (!uses_mpi_) return;
  for (size_t done = 0; done < count;) {
    const size_t piece = std::min(kMaxCount, count - done);
    collective(observer_, what, "MPI_Allreduce", [&] {
      return MPI_Allreduce(MPI_IN_PLACE, data + done, static_cast<int>(piece), MPI_FLOAT, MPI_SUM,
                           MPI_COMM_WORLD);
    });
    done += piece;
  }
}

void World::broadcast_bytes(void* data, size_t bytes, const char* what) const {
  if (!uses_mpi_) return;
  auto* base = static_cast<char*>(data);
  for (size_t done = 0; done < bytes;) {
    const size_t piece = std::min(kMaxCount, bytes - done);
    collective(observer_, what, "MPI_Bcast", [&] {
      return MPI_Bcast(base + done, static_cast<int>(piece), MPI_BYTE, 0, MPI_COMM_WORLD);
    });
    done += piece;
  }
}

void World::barrier(const char* what) const {
  if (!uses_mpi_) return;
  collective(observer_, what, "MPI_Barrier", [] { return MPI_Barrier(MPI_COMM_WORLD); });
}

void World::abort(int exit_code) const {
  std::cout.flush();
  std::cerr.flush();
  if (uses_mpi_) MPI_Abort(MPI_COMM_WORLD, exit_code);
  // Not exit(): another thread may still run, and static destructors would race it.
  std::_Exit(exit_code);
}

}  // namespace hds::trainer
