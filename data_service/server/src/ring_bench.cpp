// The ring throughput benchmark.
#include "hds/data_server/ring_bench.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "hds/transport/shm_ring.h"

namespace hds::data_server {
namespace {

using Clock = std::chrono::steady_clock;
using hds::transport::HeartbeatThread;
using hds::transport::PatchBatch;
using hds::transport::RingBatch;
using hds::transport::RingConsumer;
using hds::transport::RingError;
using hds::transport::RingProducer;
using hds::transport::RingShape;

constexpr int kWarmupBatches = 16;

PatchBatch pattern_batch(const RingBenchOptions& options) {
  PatchBatch batch;
  batch.count = options.patches;
  batch.rows = options.rows;
  batch.cols = options.cols;
  const size_t pixels = size_t(options.patches) * options.rows * options.cols;
  batch.images.resize(pixels);
  batch.masks.resize(pixels);
  for (size_t i = 0; i < pixels; ++i) {
    batch.images[i] = static_cast<float>(i % 1021) * 0.01f;
    batch.masks[i] = static_cast<uint8_t>(i % 7 == 0);
  }
  for (int i = 0; i < options.patches; ++i) {
    batch.labels.push_back(static_cast<uint8_t>(i % 2));
    batch.sample_indices.push_back(i);
    batch.crop_rows.push_back(i);
    batch.crop_cols.push_back(i);
  }
  return batch;
}

uint64_t batch_bytes(const PatchBatch& batch) {
  return batch.images.size() * sizeof(float) + batch.masks.size() + batch.labels.size() +
         3 * batch.sample_indices.size() * sizeof(int32_t);
}

// Seconds for `batches` copies of every array of `source` into `destination` (already sized, so
// no page faults are timed).
double time_memcpy(const PatchBatch& source, PatchBatch& destination, int batches) {
  const auto start = Clock::now();
  for (int i = 0; i < batches; ++i) {
    std::memcpy(destination.images.data(), source.images.data(),
                source.images.size() * sizeof(float));
    std::memcpy(destination.masks.data(), source.masks.data(), source.masks.size());
    std::memcpy(destination.labels.data(), source.labels.data(), source.labels.size());
    std::memcpy(destination.sample_indices.data(), source.sample_indices.data(),
                source.sample_indices.size() * sizeof(int32_t));
    std::memcpy(destination.crop_rows.data(), source.crop_rows.data(),
                source.crop_rows.size() * sizeof(int32_t));
    std::memcpy(destination.crop_cols.data(), source.crop_cols.data(),
                source.crop_cols.size() * sizeof(int32_t));
    // Keep the copies: the compiler may not drop them.
    asm volatile("" : : "r"(destination.images.data()) : "memory");
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The forked consumer: reads warm-up and timed batches, checks their order and a sample of
// their contents, and writes the timed seconds (negative on failure) to `result_fd`.
[[noreturn]] void consume(const std::string& name, const RingBenchOptions& options,
                          const PatchBatch& expected, int result_fd) {
  double seconds = -1;
  try {
    RingConsumer consumer(name, 10.0);
    HeartbeatThread heartbeat(consumer, HeartbeatThread::interval_for(10.0));
    RingBatch got;
    auto read_and_check = [&](int sequence) {
      consumer.read(got);
      const size_t last = expected.images.size() - 1;
      if (got.step != sequence || got.batch.count != expected.count ||
          got.batch.images[last] != expected.images[last] ||
          got.batch.masks[last] != expected.masks[last]) {
        throw RingError("bench: batch " + std::to_string(sequence) + " arrived wrong");
      }
    };
    for (int i = 0; i < kWarmupBatches; ++i) read_and_check(i);
    const auto start = Clock::now();
    for (int i = 0; i < options.batches; ++i) read_and_check(kWarmupBatches + i);
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "ring bench consumer: %s\n", error.what());
  }
  [[maybe_unused]] const ssize_t written = write(result_fd, &seconds, sizeof seconds);
  _exit(seconds > 0 ? 0 : 1);
}

// Seconds for `batches` copies of `bytes` between buffers rotating over 8 pairs (16 batches of
// memory, beyond a core's share of the last-level cache): a copy from and to DRAM.
double time_dram_memcpy(uint64_t bytes, int batches) {
  constexpr int kPairs = 8;
  std::vector<unsigned char> source(kPairs * bytes, 1), destination(kPairs * bytes, 2);
  const auto start = Clock::now();
  for (int i = 0; i < batches; ++i) {
    const uint64_t at = (i % kPairs) * bytes;
    std::memcpy(destination.data() + at, source.data() + at, bytes);
    asm volatile("" : : "r"(destination.data()) : "memory");
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

RingBenchResult run_ring_benchmark(const RingBenchOptions& options) {
  if (options.batches < 1) throw RingError("bench: batches must be at least 1");
  RingBenchResult result;
  result.options = options;
  const PatchBatch source = pattern_batch(options);
  PatchBatch destination = source;  // sized and touched
  result.batch_bytes = batch_bytes(source);
  double memcpy_seconds = time_memcpy(source, destination, options.batches);

  RingShape shape;
  shape.slot_count = options.slots;
  shape.patch_rows = options.rows;
  shape.patch_cols = options.cols;
  shape.batch_capacity = options.patches;
  RingProducer producer(hds::transport::ring_name("bench-" + std::to_string(getpid()), 0), shape,
                        10.0);
  int result_pipe[2];
  if (pipe(result_pipe) != 0) throw RingError("bench: pipe failed");
  const pid_t child = fork();
  if (child < 0) throw RingError("bench: fork failed");
  if (child == 0) {
    close(result_pipe[0]);
    consume(producer.name(), options, source, result_pipe[1]);
  }
  close(result_pipe[1]);
  std::string failure;
  try {
    HeartbeatThread heartbeat(producer, HeartbeatThread::interval_for(10.0));
    const std::atomic<bool> never{false};
    for (int sequence = 0; sequence < kWarmupBatches + options.batches; ++sequence) {
      producer.wait_for_slot(sequence, never);
      producer.write(sequence, 1, sequence, source);
      producer.publish(sequence);
    }
  } catch (const RingError& error) {
    failure = error.what();
  }
  double ring_seconds = -1;
  const bool got_result = read(result_pipe[0], &ring_seconds, sizeof ring_seconds) ==
                          static_cast<ssize_t>(sizeof ring_seconds);
  close(result_pipe[0]);
  int status = 0;
  waitpid(child, &status, 0);
  if (!failure.empty()) throw RingError("bench: " + failure);
  if (!got_result || ring_seconds <= 0) throw RingError("bench: the consumer process failed");

  memcpy_seconds = std::min(memcpy_seconds, time_memcpy(source, destination, options.batches));
  result.ring_batches_per_second = options.batches / ring_seconds;
  result.memcpy_batches_per_second = options.batches / memcpy_seconds;
  result.dram_memcpy_batches_per_second =
      options.batches / time_dram_memcpy(result.batch_bytes, options.batches);
  return result;
}

std::string RingBenchResult::json() const {
  const double gib = double(batch_bytes) / (1 << 30);
  char line[768];
  std::snprintf(line, sizeof line,
                "{\"bench\": \"ring\", \"mode\": \"two processes (fork)\", \"batches\": %d, "
                "\"patches\": %d, \"rows\": %d, \"cols\": %d, \"slots\": %u, "
                "\"batch_bytes\": %llu, \"ring_batches_per_s\": %.1f, \"ring_gib_per_s\": %.2f, "
                "\"memcpy_batches_per_s\": %.1f, \"memcpy_gib_per_s\": %.2f, \"ratio\": %.3f, "
                "\"target_ratio\": 0.7, \"dram_memcpy_batches_per_s\": %.1f, "
                "\"ratio_to_dram_memcpy\": %.3f}",
                options.batches, options.patches, options.rows, options.cols, options.slots,
                static_cast<unsigned long long>(batch_bytes), ring_batches_per_second,
                ring_batches_per_second * gib, memcpy_batches_per_second,
                memcpy_batches_per_second * gib, ratio(), dram_memcpy_batches_per_second,
                ring_batches_per_second / dram_memcpy_batches_per_second);
  return line;
}

}  // namespace hds::data_server
