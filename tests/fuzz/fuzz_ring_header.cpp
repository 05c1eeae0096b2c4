// libFuzzer target: what a trainer does with a hostile shared-memory ring segment
// (hds/transport/shm_ring_layout.h). The input is the segment's first bytes: its header (the first
// 4096 bytes, zero-padded) and then the start of the slot area. The segment is allocated exactly
// as long as the header claims (4096 + slot_count x slot_bytes, when that is at most 16 MiB;
// otherwise as long as the input, or shorter than a header for inputs under 64 bytes), so ASan
// reports any read beyond it. validate_ring_header must accept a header consistent with that
// length or raise RingError; once it accepts, every queued batch is read with read_ring_slot,
// which must raise RingError for a bad slot and never read outside its slot.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "hds/transport/shm_ring.h"

namespace {

namespace layout = hds::transport::ring_layout;

constexpr uint64_t kMaxFuzzSegmentBytes = uint64_t{16} << 20;

template <class T>
T field_at(const uint8_t* data, size_t size, size_t offset) {
  T value{};
  if (offset + sizeof value <= size) std::memcpy(&value, data + offset, sizeof value);
  return value;
}

// The segment length to allocate for this input (see the top of the file).
uint64_t segment_bytes_for(const uint8_t* data, size_t size) {
  if (size < 64) return size;
  const auto slot_count = field_at<uint32_t>(data, size, offsetof(layout::RingHeader, slot_count));
  const auto slot_bytes = field_at<uint64_t>(data, size, offsetof(layout::RingHeader, slot_bytes));
  const uint64_t room = kMaxFuzzSegmentBytes - layout::kHeaderBytes;
  if (slot_count > 0 && slot_bytes <= room / slot_count) {
    return layout::kHeaderBytes + slot_count * slot_bytes;
  }
  return size < layout::kHeaderBytes ? layout::kHeaderBytes : size;
}

void check_batch(const hds::transport::RingBatch& got, const hds::transport::RingShape& shape) {
  const auto& batch = got.batch;
  const uint64_t pixels = uint64_t(batch.count) * shape.patch_rows * shape.patch_cols;
  if (batch.count < 0 || batch.count > shape.batch_capacity || batch.rows != shape.patch_rows ||
      batch.cols != shape.patch_cols || batch.images.size() != pixels ||
      batch.masks.size() != pixels || batch.labels.size() != size_t(batch.count) ||
      batch.sample_indices.size() != size_t(batch.count) ||
      batch.crop_rows.size() != size_t(batch.count) ||
      batch.crop_cols.size() != size_t(batch.count)) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint64_t segment_bytes = segment_bytes_for(data, size);
  void* memory = nullptr;
  if (posix_memalign(&memory, 64, segment_bytes > 0 ? segment_bytes : 1) != 0) return 0;
  auto* segment = static_cast<unsigned char*>(memory);
  std::memset(segment, 0, segment_bytes);
  std::memcpy(segment, data, size < segment_bytes ? size : segment_bytes);

  try {
    const hds::transport::RingHeaderCheck checked =
        hds::transport::validate_ring_header(segment, segment_bytes, "/hds-fuzz-r0");
    const hds::transport::RingShape& shape = checked.shape;
    if (segment_bytes != hds::transport::ring_segment_bytes(shape)) __builtin_trap();
    // As RingConsumer::read: the queued batches consumed .. produced - 1, each in its slot.
    const auto& header = *reinterpret_cast<const layout::RingHeader*>(segment);
    const uint64_t produced = header.produced.load();
    if (produced < checked.consumed || produced - checked.consumed > shape.slot_count) {
      __builtin_trap();  // validation let inconsistent counters through
    }
    const uint64_t slot_bytes = hds::transport::ring_slot_bytes(shape);
    hds::transport::RingBatch got;
    for (uint64_t sequence = checked.consumed; sequence < produced; ++sequence) {
      const unsigned char* slot =
          segment + layout::kHeaderBytes + (sequence % shape.slot_count) * slot_bytes;
      try {
        hds::transport::read_ring_slot(slot, shape, sequence, "/hds-fuzz-r0", got);
        check_batch(got, shape);
      } catch (const hds::transport::RingError&) {
      }
    }
  } catch (const hds::transport::RingError&) {
  }
  std::free(memory);
  return 0;
}
