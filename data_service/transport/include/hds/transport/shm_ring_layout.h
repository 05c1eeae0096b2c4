// The binary format of a shared-memory ring segment (hds/transport/shm_ring.h). Public so that
// tests and fuzzers can build and damage segments; everything else goes through RingProducer and
// RingConsumer. Plain data, no behaviour.
//
//   [0, 4096)                      RingHeader, zero-padded
//   [4096 + i * slot_bytes, ...)   slot i, i < slot_count: SlotHeader, then the arrays at the
//                                  offsets of slot_layout(), each 64-byte aligned; slot_bytes is
//                                  a multiple of 4096
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace hds::transport::ring_layout {

constexpr uint64_t kMagic = 0x31474e4952534448ULL;  // "HDSRING1" in little-endian bytes
constexpr uint32_t kVersion = 1;
constexpr uint64_t kHeaderBytes = 4096;
constexpr uint64_t kArrayAlignment = 64;   // cache line
constexpr uint64_t kSlotAlignment = 4096;  // page

// Limits the consumer enforces before trusting a header (a hostile segment cannot make it map or
// index more than this).
constexpr uint32_t kMaxSlotCount = 1024;
constexpr int32_t kMaxPatchSide = 1 << 15;
constexpr int32_t kMaxBatchCapacity = 4096;
constexpr uint64_t kMaxSegmentBytes = uint64_t{64} << 30;

// RingHeader::state bits.
enum StateFlag : uint32_t {
  kConsumerAttached = 1u << 0,
  kProducerClosed = 1u << 1,  // the producer shut down cleanly: no more batches
  kConsumerClosed = 1u << 2,  // the consumer detached cleanly
};

// Counters and futex words live in the mapping and are shared between processes, so their
// atomics must be lock-free (hence address-free), and the futex words exactly 32 bits.
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<int64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<uint32_t>) == 4);

struct RingHeader {
  // Written once by the producer before it hands out the name; the consumer copies them once,
  // validates the copy and never reads them again.
  uint64_t magic;
  uint32_t version;
  uint32_t header_bytes;
  uint32_t slot_count;
  int32_t patch_rows;
  int32_t patch_cols;
  int32_t batch_capacity;  // patches per slot
  uint64_t slot_bytes;

  // The producer's cache line. produced: batches published (slot of batch s: s % slot_count).
  alignas(64) std::atomic<uint64_t> produced;
  std::atomic<uint32_t> produced_signal;  // futex word, bumped after each publish

  // The consumer's cache line. consumed: batches read; produced - consumed <= slot_count.
  alignas(64) std::atomic<uint64_t> consumed;
  std::atomic<uint32_t> consumed_signal;  // futex word, bumped after each read

  // Liveness: CLOCK_MONOTONIC nanoseconds of each side's last heartbeat, and process ids.
  alignas(64) std::atomic<int64_t> producer_heartbeat_ns;
  std::atomic<int64_t> consumer_heartbeat_ns;
  std::atomic<int32_t> producer_pid;
  std::atomic<int32_t> consumer_pid;  // 0 until a consumer attaches
  std::atomic<uint32_t> state;        // StateFlag bits
};
static_assert(std::is_standard_layout_v<RingHeader>);
static_assert(sizeof(RingHeader) <= kHeaderBytes);

struct SlotHeader {
  // 1 + the ring sequence number of the batch in the slot (0: never written); stored (release)
  // after the batch, so a reader that sees it sees the batch.
  std::atomic<uint64_t> sequence;
  int32_t epoch;  // 1-based
  int32_t step;   // 0-based
  int32_t count;  // patches in the batch, 0 .. batch_capacity
};
static_assert(std::is_standard_layout_v<SlotHeader>);

// Byte offsets of a slot's arrays from the slot start, and the slot's size. Arrays hold
// batch_capacity patches; the first `count` are valid.
struct SlotLayout {
  uint64_t images;          // float, capacity x rows x cols
  uint64_t masks;           // uint8, capacity x rows x cols
  uint64_t labels;          // uint8, capacity
  uint64_t sample_indices;  // int32, capacity
  uint64_t crop_rows;       // int32, capacity
  uint64_t crop_cols;       // int32, capacity
  uint64_t slot_bytes;
};

// The layout for a shape within the limits above (checked by the caller; the arithmetic cannot
// overflow there: at most 2^30 pixels x 2^12 patches x 4 bytes).
inline SlotLayout slot_layout(int32_t patch_rows, int32_t patch_cols, int32_t batch_capacity) {
  const auto align = [](uint64_t bytes, uint64_t to) { return (bytes + to - 1) / to * to; };
  const uint64_t pixels = uint64_t(patch_rows) * uint64_t(patch_cols) * uint64_t(batch_capacity);
  const uint64_t patches = uint64_t(batch_capacity);
  SlotLayout layout{};
  layout.images = align(sizeof(SlotHeader), kArrayAlignment);
  layout.masks = align(layout.images + pixels * sizeof(float), kArrayAlignment);
  layout.labels = align(layout.masks + pixels, kArrayAlignment);
  layout.sample_indices = align(layout.labels + patches, kArrayAlignment);
  layout.crop_rows = align(layout.sample_indices + patches * sizeof(int32_t), kArrayAlignment);
  layout.crop_cols = align(layout.crop_rows + patches * sizeof(int32_t), kArrayAlignment);
  layout.slot_bytes = align(layout.crop_cols + patches * sizeof(int32_t), kSlotAlignment);
  return layout;
}

}  // namespace hds::transport::ring_layout
