#include "hds/trainer/world.h"

#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

namespace hds::trainer {

namespace {

// MPI counts are ints: larger buffers go in pieces of this many elements.
constexpr size_t kMaxCount = size_t{1} << 30;

void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw WorldError(std::string(call) + " failed: " + std::string(text, length));
}

}  // namespace

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

int64_t World::sum(int64_t value) const {
  if (!uses_mpi_) return value;
  int64_t total = 0;
  check(MPI_Allreduce(&value, &total, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  return total;
}

bool World::any(bool value) const { return sum(value ? 1 : 0) > 0; }

void World::sum_floats(float* data, size_t count) const {
  if (!uses_mpi_) return;
  for (size_t done = 0; done < count;) {
    const size_t piece = std::min(kMaxCount, count - done);
    check(MPI_Allreduce(MPI_IN_PLACE, data + done, static_cast<int>(piece), MPI_FLOAT, MPI_SUM,
                        MPI_COMM_WORLD),
          "MPI_Allreduce");
    done += piece;
  }
}

void World::broadcast_bytes(void* data, size_t bytes) const {
  if (!uses_mpi_) return;
  auto* base = static_cast<char*>(data);
  for (size_t done = 0; done < bytes;) {
    const size_t piece = std::min(kMaxCount, bytes - done);
    check(MPI_Bcast(base + done, static_cast<int>(piece), MPI_BYTE, 0, MPI_COMM_WORLD),
          "MPI_Bcast");
    done += piece;
  }
}

void World::barrier() const {
  if (uses_mpi_) check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

void World::abort(int exit_code) const {
  std::cerr.flush();
  if (uses_mpi_) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::exit(exit_code);
}

}  // namespace hds::trainer
