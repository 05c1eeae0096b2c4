// A ring end in its own process, for the two-process ring tests (shm_ring_test.cpp):
//   hds_ring_peer produce NAME SLOTS ROWS COLS CAPACITY BATCHES TIMEOUT_S
//   hds_ring_peer consume NAME ROWS COLS CAPACITY BATCHES TIMEOUT_S
// The producer publishes pattern_batch(s) as sequence s (BATCHES < 0: for ever) and waits until
// all are read; the consumer checks every batch against pattern_batch. Each prints "ready" once
// its ring is set up. Exit status: 0 done, 3 the peer is gone (the message is printed),
// 4 another ring error, 5 a wrong batch, 2 bad arguments.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "hds/transport/shm_ring.h"
#include "ring_pattern.h"

namespace {

using namespace hds::transport;
using hds::transport::testing::pattern_batch;
using hds::transport::testing::pattern_epoch;
using hds::transport::testing::pattern_step;

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int produce(char** argv) {
  const std::string name = argv[0];
  RingShape shape;
  shape.slot_count = static_cast<uint32_t>(std::atoi(argv[1]));
  shape.patch_rows = std::atoi(argv[2]);
  shape.patch_cols = std::atoi(argv[3]);
  shape.batch_capacity = std::atoi(argv[4]);
  const long long batches = std::atoll(argv[5]);
  const double timeout = std::atof(argv[6]);
  RingProducer ring(name, shape, timeout);
  HeartbeatThread heartbeat(ring, HeartbeatThread::interval_for(timeout));
  say("ready");
  const std::atomic<bool> never{false};
  for (uint64_t s = 0; batches < 0 || s < static_cast<uint64_t>(batches); ++s) {
    ring.wait_for_slot(s, never);
    ring.write(s, pattern_epoch(s), pattern_step(s),
               pattern_batch(s, shape.patch_rows, shape.patch_cols, shape.batch_capacity));
    ring.publish(s);
  }
  // Wait until the consumer has read everything: the slot after the last is free then.
  ring.wait_for_slot(static_cast<uint64_t>(batches) - 1 + shape.slot_count, never);
  say("done");
  return 0;
}

int consume(char** argv) {
  const std::string name = argv[0];
  const int rows = std::atoi(argv[1]);
  const int cols = std::atoi(argv[2]);
  const int capacity = std::atoi(argv[3]);
  const long long batches = std::atoll(argv[4]);
  const double timeout = std::atof(argv[5]);
  RingConsumer ring(name, timeout);
  HeartbeatThread heartbeat(ring, HeartbeatThread::interval_for(timeout));
  say("ready");
  RingBatch got;
  for (uint64_t s = 0; batches < 0 || s < static_cast<uint64_t>(batches); ++s) {
    ring.read(got);
    const PatchBatch expected = pattern_batch(s, rows, cols, capacity);
    if (got.epoch != pattern_epoch(s) || got.step != pattern_step(s) ||
        got.batch.count != expected.count || got.batch.images != expected.images ||
        got.batch.masks != expected.masks || got.batch.labels != expected.labels ||
        got.batch.sample_indices != expected.sample_indices ||
        got.batch.crop_rows != expected.crop_rows || got.batch.crop_cols != expected.crop_cols) {
      say("wrong batch at sequence " + std::to_string(s));
      return 5;
    }
  }
  say("done");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 9 && std::strcmp(argv[1], "produce") == 0) return produce(argv + 2);
    if (argc == 8 && std::strcmp(argv[1], "consume") == 0) return consume(argv + 2);
  } catch (const RingPeerError& error) {
    say(std::string("peer: ") + error.what());
    return 3;
  } catch (const std::exception& error) {
    say(std::string("error: ") + error.what());
    return 4;
  }
  std::fprintf(stderr, "usage: see tests/data/ring_peer.cpp\n");
  return 2;
}
