// The shared-memory ring: segment creation and validation, futex waits, liveness checks.
#include "hds/transport/shm_ring.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <new>
#include <utility>

#include "hds/common/job_id.h"

namespace hds::transport {
namespace {

using ring_layout::RingHeader;
using ring_layout::SlotHeader;

int64_t monotonic_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

std::string system_error(const std::string& what) { return what + ": " + std::strerror(errno); }

// Not FUTEX_PRIVATE: the word is shared between processes.
void futex_wait(std::atomic<uint32_t>& word, uint32_t expected, int64_t timeout_ns) {
  timespec timeout{static_cast<time_t>(timeout_ns / 1'000'000'000),
                   static_cast<long>(timeout_ns % 1'000'000'000)};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT, expected, &timeout, nullptr,
          0);
}

void futex_wake_all(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

// One read of a field the peer may change: the value is copied once and only the copy is
// checked and used.
template <class T>
T read_once(const T& field) {
  T value;
  std::memcpy(&value, static_cast<const void*>(&field), sizeof value);
  return value;
}

std::string format_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", seconds);
  return text;
}

// memcpy that accepts the null data() of an empty vector (a batch of 0 patches).
void copy_bytes(void* destination, const void* source, size_t bytes) {
  if (bytes > 0) std::memcpy(destination, source, bytes);
}

// Copies into a slot with non-temporal stores: the batch is for another core, so writing it
// around this core's caches saves their pollution and the read-for-ownership of each line.
// `destination` is 64-byte aligned (slot arrays are). Callers fence before publishing.
void stream_to_slot(unsigned char* destination, const void* source, size_t bytes) {
#if defined(__SSE2__)
  const auto* from = static_cast<const unsigned char*>(source);
  size_t done = 0;
  for (; done + 64 <= bytes; done += 64) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + done));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + done + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + done + 32));
    const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + done + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(destination + done), a);
    _mm_stream_si128(reinterpret_cast<__m128i*>(destination + done + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i*>(destination + done + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i*>(destination + done + 48), d);
  }
  copy_bytes(destination + done, from + done, bytes - done);
#else
  copy_bytes(destination, source, bytes);
#endif
}

// Orders the non-temporal stores before the release store that publishes them.
void fence_streamed_stores() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

bool process_exists(int32_t pid) { return !(kill(pid, 0) == -1 && errno == ESRCH); }

// Unmaps and closes a mapping unless released: cleanup while a segment is being set up.
class MappingGuard {
 public:
  explicit MappingGuard(int fd) : fd_(fd) {}
  ~MappingGuard() {
    if (base_ != nullptr) munmap(base_, bytes_);
    if (fd_ >= 0) ::close(fd_);
  }
  void map(uint64_t bytes, int protection) {
    void* base = mmap(nullptr, bytes, protection, MAP_SHARED, fd_, 0);
    if (base == MAP_FAILED) throw RingError(system_error("mmap"));
    base_ = base;
    bytes_ = bytes;
  }
  void* base() const { return base_; }
  ShmRing::Mapping release() {
    ShmRing::Mapping mapping{fd_, base_, bytes_};
    fd_ = -1;
    base_ = nullptr;
    return mapping;
  }

 private:
  int fd_;
  void* base_ = nullptr;
  uint64_t bytes_ = 0;
};

// A segment named `name` whose producer no longer exists (killed before it could unlink) is
// removed; returns whether it was.
bool reclaim_abandoned_segment(const std::string& name, int32_t* owner_pid) {
  const int fd = shm_open(name.c_str(), O_RDONLY, 0);
  if (fd < 0) return errno == ENOENT;  // gone meanwhile: try again
  MappingGuard guard(fd);
  struct stat status {};
  if (fstat(fd, &status) != 0 || status.st_uid != geteuid() ||
      static_cast<uint64_t>(status.st_size) < ring_layout::kHeaderBytes) {
    return false;
  }
  guard.map(ring_layout::kHeaderBytes, PROT_READ);
  const auto& header = *static_cast<const RingHeader*>(guard.base());
  if (read_once(header.magic) != ring_layout::kMagic) return false;
  *owner_pid = header.producer_pid.load();
  if (*owner_pid <= 0 || process_exists(*owner_pid)) return false;
  return shm_unlink(name.c_str()) == 0 || errno == ENOENT;
}

// Creates, sizes and maps a new segment (mode 0600, exclusive) and writes its header.
ShmRing::Mapping create_segment(const std::string& name, const RingShape& shape) {
  check_ring_shape(shape);
  const uint64_t bytes = ring_segment_bytes(shape);
  int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  int32_t owner_pid = 0;
  if (fd < 0 && errno == EEXIST) {
    if (reclaim_abandoned_segment(name, &owner_pid)) {
      fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    } else {
      errno = EEXIST;  // the look inside may have changed it
    }
  }
  if (fd < 0 && errno == EEXIST) {
    throw RingError(
        "ring " + name + " already exists" +
        (owner_pid > 0 ? " and its data service (pid " + std::to_string(owner_pid) + ") is running"
                       : "") +
        ": another data service serves this job id; stop it or remove /dev/shm" + name);
  }
  if (fd < 0) throw RingError(system_error("ring " + name + ": shm_open"));
  MappingGuard guard(fd);
  // Reserve the pages now: a full /dev/shm is an error here, not a SIGBUS at the first write.
  if (const int error = posix_fallocate(fd, 0, static_cast<off_t>(bytes)); error != 0) {
    shm_unlink(name.c_str());
    throw RingError("ring " + name + ": cannot reserve " + std::to_string(bytes >> 20) +
                    " MiB in /dev/shm: " + std::strerror(error));
  }
  try {
    guard.map(bytes, PROT_READ | PROT_WRITE);
  } catch (...) {
    shm_unlink(name.c_str());
    throw;
  }

  auto* header = new (guard.base()) RingHeader{};
  header->version = ring_layout::kVersion;
  header->header_bytes = static_cast<uint32_t>(ring_layout::kHeaderBytes);
  header->slot_count = shape.slot_count;
  header->patch_rows = shape.patch_rows;
  header->patch_cols = shape.patch_cols;
  header->batch_capacity = shape.batch_capacity;
  header->slot_bytes = ring_slot_bytes(shape);
  const int64_t now = monotonic_ns();
  header->producer_heartbeat_ns.store(now);
  header->consumer_heartbeat_ns.store(now);  // the consumer's grace period starts now
  header->producer_pid.store(getpid());
  auto* slots = static_cast<unsigned char*>(guard.base()) + ring_layout::kHeaderBytes;
  for (uint32_t i = 0; i < shape.slot_count; ++i) new (slots + i * header->slot_bytes) SlotHeader{};
  std::atomic_thread_fence(std::memory_order_release);
  header->magic = ring_layout::kMagic;
  return guard.release();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Shapes and names.

void check_ring_shape(const RingShape& shape) {
  auto require = [](bool ok, const std::string& field, long long value, long long limit) {
    if (!ok) {
      throw RingError("ring shape: " + field + " " + std::to_string(value) + " is outside 1.." +
                      std::to_string(limit));
    }
  };
  require(shape.slot_count >= 1 && shape.slot_count <= ring_layout::kMaxSlotCount, "slot_count",
          shape.slot_count, ring_layout::kMaxSlotCount);
  require(shape.patch_rows >= 1 && shape.patch_rows <= ring_layout::kMaxPatchSide, "patch_rows",
          shape.patch_rows, ring_layout::kMaxPatchSide);
  require(shape.patch_cols >= 1 && shape.patch_cols <= ring_layout::kMaxPatchSide, "patch_cols",
          shape.patch_cols, ring_layout::kMaxPatchSide);
  require(shape.batch_capacity >= 1 && shape.batch_capacity <= ring_layout::kMaxBatchCapacity,
          "batch_capacity", shape.batch_capacity, ring_layout::kMaxBatchCapacity);
  const uint64_t bytes = ring_segment_bytes(shape);
  if (bytes > ring_layout::kMaxSegmentBytes) {
    throw RingError("ring shape: " + std::to_string(bytes >> 20) + " MiB exceeds the " +
                    std::to_string(ring_layout::kMaxSegmentBytes >> 20) + " MiB limit");
  }
}

uint64_t ring_slot_bytes(const RingShape& shape) {
  return ring_layout::slot_layout(shape.patch_rows, shape.patch_cols, shape.batch_capacity)
      .slot_bytes;
}

uint64_t ring_segment_bytes(const RingShape& shape) {
  return ring_layout::kHeaderBytes + uint64_t{shape.slot_count} * ring_slot_bytes(shape);
}

std::string ring_name(const std::string& job_id, int rank) {
  try {
    return hds::common::ring_name(job_id, rank);
  } catch (const std::invalid_argument& error) {
    throw RingError(error.what());
  }
}

// ---------------------------------------------------------------------------------------------
// ShmRing.

ShmRing::ShmRing(Side side, std::string name, Mapping mapping, RingShape shape,
                 double peer_timeout_seconds)
    : side_(side),
      name_(std::move(name)),
      mapping_(mapping),
      shape_(shape),
      layout_(ring_layout::slot_layout(shape.patch_rows, shape.patch_cols, shape.batch_capacity)),
      peer_timeout_seconds_(peer_timeout_seconds) {}

ShmRing::~ShmRing() {
  munmap(mapping_.base, mapping_.bytes);
  ::close(mapping_.fd);
}

RingHeader& ShmRing::header() const { return *static_cast<RingHeader*>(mapping_.base); }

unsigned char* ShmRing::slot(uint64_t sequence) const {
  // shape_ and layout_ are this process's validated copies, so the slot lies inside the mapping.
  return static_cast<unsigned char*>(mapping_.base) + ring_layout::kHeaderBytes +
         (sequence % shape_.slot_count) * layout_.slot_bytes;
}

void ShmRing::beat() {
  auto& heartbeat =
      side_ == Side::producer ? header().producer_heartbeat_ns : header().consumer_heartbeat_ns;
  heartbeat.store(monotonic_ns(), std::memory_order_relaxed);
}

void ShmRing::unlink() {
  if (!unlinked_.exchange(true)) shm_unlink(name_.c_str());
}

bool ShmRing::wait(std::atomic<uint32_t>& signal, const std::function<bool()>& ready,
                   const std::atomic<bool>* stop) {
  // Short slices bound how late a dead peer or a stop request is noticed.
  const int64_t slice_ns = std::clamp<int64_t>(
      static_cast<int64_t>(peer_timeout_seconds_ * 1e9 / 4), 1'000'000, 100'000'000);
  for (;;) {
    // Read the word before the condition: a notify after the check changes the word, so the
    // futex wait returns at once instead of missing the wake-up.
    const uint32_t seen = signal.load(std::memory_order_acquire);
    if (ready()) return true;
    if (stop != nullptr && stop->load()) return false;
    check_peer();
    futex_wait(signal, seen, slice_ns);
  }
}

void ShmRing::notify(std::atomic<uint32_t>& signal) {
  signal.fetch_add(1, std::memory_order_release);
  futex_wake_all(signal);
}

ShmRing::PeerProblem ShmRing::peer_problem(const char* peer, int32_t pid,
                                           int64_t heartbeat_ns) const {
  const std::string who = std::string(peer) + " (pid " + std::to_string(pid) + ")";
  if (pid <= 0) return {"corrupt header: " + std::string(peer) + " pid " + std::to_string(pid)};
  if (!process_exists(pid)) return {who + " exited"};
  // In double: a corrupt heartbeat must not overflow the subtraction.
  const double silent_seconds = (double(monotonic_ns()) - double(heartbeat_ns)) / 1e9;
  if (silent_seconds > peer_timeout_seconds_) {
    return {who + " stopped responding: no heartbeat for " + format_seconds(silent_seconds) + " s",
            true};
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// RingProducer.

RingProducer::RingProducer(const std::string& name, const RingShape& shape,
                           double peer_timeout_seconds)
    : ShmRing(Side::producer, name, create_segment(name, shape), shape, peer_timeout_seconds),
      created_(std::chrono::steady_clock::now()) {}

RingProducer::~RingProducer() {
  close();
  unlink();
}

void RingProducer::close() {
  header().state.fetch_or(ring_layout::kProducerClosed);
  notify(header().produced_signal);
}

void RingProducer::wake_waiters() { futex_wake_all(header().consumed_signal); }

uint64_t RingProducer::produced() const {
  return header().produced.load(std::memory_order_relaxed);
}

uint64_t RingProducer::consumed() const {
  return header().consumed.load(std::memory_order_relaxed);
}

void RingProducer::check_peer() {
  const uint32_t state = header().state.load();
  const int32_t pid = header().consumer_pid.load();
  if (state & ring_layout::kConsumerClosed) {
    throw RingPeerError("trainer (pid " + std::to_string(pid) + ") detached from ring " + name_);
  }
  if (!(state & ring_layout::kConsumerAttached)) {
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - created_).count();
    if (waited > peer_timeout_seconds()) {
      throw RingPeerError("no trainer attached to ring " + name_ + " within " +
                          format_seconds(peer_timeout_seconds()) + " s");
    }
    return;
  }
  const PeerProblem problem =
      peer_problem("trainer", pid, header().consumer_heartbeat_ns.load(std::memory_order_relaxed));
  if (!problem.text.empty()) {
    throw RingPeerError(problem.text + " (ring " + name_ + ")", problem.silent);
  }
}

bool RingProducer::wait_for_slot(uint64_t sequence, const std::atomic<bool>& stop) {
  return wait(
      header().consumed_signal,
      [&] {
        const uint64_t consumed = header().consumed.load(std::memory_order_acquire);
        // The consumer only ever moves its counter up to what was published.
        if (consumed > produced()) {
          throw RingError("ring " + name_ + ": corrupt header: consumed counter " +
                          std::to_string(consumed) + " is ahead of produced " +
                          std::to_string(produced()));
        }
        return sequence < consumed + shape().slot_count;
      },
      &stop);
}

void RingProducer::write(uint64_t sequence, int epoch, int step, const PatchBatch& batch) {
  const RingShape& s = shape();
  const uint64_t pixels = uint64_t(batch.count) * s.patch_rows * s.patch_cols;
  const auto patches = static_cast<uint64_t>(batch.count);
  if (batch.count < 0 || batch.count > s.batch_capacity ||
      (batch.count > 0 && (batch.rows != s.patch_rows || batch.cols != s.patch_cols)) ||
      batch.images.size() != pixels || batch.masks.size() != pixels ||
      batch.labels.size() != patches || batch.sample_indices.size() != patches ||
      batch.crop_rows.size() != patches || batch.crop_cols.size() != patches) {
    throw RingError("ring " + name_ + ": a batch of " + std::to_string(batch.count) +
                    " patches of " + std::to_string(batch.rows) + "x" + std::to_string(batch.cols) +
                    " does not fit slots of " + std::to_string(s.batch_capacity) + " x " +
                    std::to_string(s.patch_rows) + "x" + std::to_string(s.patch_cols));
  }
  unsigned char* base = slot(sequence);
  const ring_layout::SlotLayout& at = layout();
  stream_to_slot(base + at.images, batch.images.data(), pixels * sizeof(float));
  stream_to_slot(base + at.masks, batch.masks.data(), pixels);
  copy_bytes(base + at.labels, batch.labels.data(), patches);
  copy_bytes(base + at.sample_indices, batch.sample_indices.data(), patches * sizeof(int32_t));
  copy_bytes(base + at.crop_rows, batch.crop_rows.data(), patches * sizeof(int32_t));
  copy_bytes(base + at.crop_cols, batch.crop_cols.data(), patches * sizeof(int32_t));
  auto& slot_header = *reinterpret_cast<SlotHeader*>(base);
  slot_header.epoch = epoch;
  slot_header.step = step;
  slot_header.count = batch.count;
  fence_streamed_stores();
  slot_header.sequence.store(sequence + 1, std::memory_order_release);
}

void RingProducer::publish(uint64_t sequence) {
  if (sequence != produced()) {
    throw RingError("ring " + name_ + ": batch " + std::to_string(sequence) +
                    " published out of order (next is " + std::to_string(produced()) + ")");
  }
  header().produced.store(sequence + 1, std::memory_order_release);
  notify(header().produced_signal);
}

// ---------------------------------------------------------------------------------------------
// RingConsumer.

struct RingConsumer::Attached {
  std::string name;
  Mapping mapping;
  RingShape shape;
  uint64_t consumed = 0;
};

namespace {

// Throws RingError unless `size` bytes can hold a ring header and stay within the limit.
void check_segment_size(const std::string& name, uint64_t size) {
  const std::string where = "ring " + name + ": ";
  if (size < ring_layout::kHeaderBytes || size > ring_layout::kMaxSegmentBytes) {
    throw RingError(where + "segment of " + std::to_string(size) + " bytes is not a ring (" +
                    std::to_string(ring_layout::kHeaderBytes) + " bytes of header at least, " +
                    std::to_string(ring_layout::kMaxSegmentBytes >> 30) + " GiB at most)");
  }
}

}  // namespace

RingHeaderCheck validate_ring_header(const void* segment, uint64_t segment_bytes,
                                     const std::string& name, const RingShape* expected) {
  check_segment_size(name, segment_bytes);
  const std::string where = "ring " + name + ": ";
  // Every field is read once into a local (read_once or one atomic load), checked, then used.
  const auto& header = *static_cast<const RingHeader*>(segment);
  RingHeaderCheck checked;
  RingShape& shape = checked.shape;

  const std::string corrupt = where + "corrupt header: ";
  const uint64_t magic = read_once(header.magic);
  if (magic != ring_layout::kMagic) {
    char text[32];
    std::snprintf(text, sizeof text, "0x%016llx", static_cast<unsigned long long>(magic));
    throw RingError(corrupt + "magic " + text + " is not HDSRING1 (not a ring segment)");
  }
  const uint32_t version = read_once(header.version);
  if (version != ring_layout::kVersion) {
    throw RingError(where + "format version " + std::to_string(version) +
                    " is not supported (this build reads version " +
                    std::to_string(ring_layout::kVersion) +
                    "): rebuild the trainer and the data service from the same tree");
  }
  const uint32_t header_bytes = read_once(header.header_bytes);
  if (header_bytes != ring_layout::kHeaderBytes) {
    throw RingError(corrupt + "header_bytes " + std::to_string(header_bytes) + ", expected " +
                    std::to_string(ring_layout::kHeaderBytes));
  }
  shape.slot_count = read_once(header.slot_count);
  shape.patch_rows = read_once(header.patch_rows);
  shape.patch_cols = read_once(header.patch_cols);
  shape.batch_capacity = read_once(header.batch_capacity);
  try {
    check_ring_shape(shape);
  } catch (const RingError& error) {
    throw RingError(corrupt + (error.what() + std::string("ring shape: ").size()));
  }
  const uint64_t slot_bytes = read_once(header.slot_bytes);
  if (slot_bytes != ring_slot_bytes(shape)) {
    throw RingError(corrupt + "slot_bytes " + std::to_string(slot_bytes) + " does not match " +
                    std::to_string(shape.batch_capacity) + " patches of " +
                    std::to_string(shape.patch_rows) + "x" + std::to_string(shape.patch_cols) +
                    " (" + std::to_string(ring_slot_bytes(shape)) + ")");
  }
  if (segment_bytes != ring_segment_bytes(shape)) {
    throw RingError(corrupt + std::to_string(shape.slot_count) + " slots of " +
                    std::to_string(slot_bytes) + " bytes need a segment of " +
                    std::to_string(ring_segment_bytes(shape)) + " bytes; it has " +
                    std::to_string(segment_bytes));
  }
  if (expected != nullptr &&
      (expected->slot_count != shape.slot_count || expected->patch_rows != shape.patch_rows ||
       expected->patch_cols != shape.patch_cols ||
       expected->batch_capacity != shape.batch_capacity)) {
    throw RingError(
        where + "holds " + std::to_string(shape.slot_count) + " slots of " +
        std::to_string(shape.batch_capacity) + " x " + std::to_string(shape.patch_rows) + "x" +
        std::to_string(shape.patch_cols) + "; the data service announced " +
        std::to_string(expected->slot_count) + " of " + std::to_string(expected->batch_capacity) +
        " x " + std::to_string(expected->patch_rows) + "x" + std::to_string(expected->patch_cols));
  }
  const uint64_t produced = header.produced.load(std::memory_order_acquire);
  checked.consumed = header.consumed.load(std::memory_order_acquire);
  if (checked.consumed > produced || produced - checked.consumed > shape.slot_count) {
    throw RingError(corrupt + "counters produced " + std::to_string(produced) + " and consumed " +
                    std::to_string(checked.consumed) +
                    " are not 0 <= produced - consumed <= " + std::to_string(shape.slot_count));
  }
  const int32_t producer_pid = header.producer_pid.load();
  if (producer_pid <= 0) {
    throw RingError(corrupt + "producer pid " + std::to_string(producer_pid));
  }
  const uint32_t state = header.state.load();
  if (state & ring_layout::kConsumerAttached) {
    throw RingError(where + "already has a consumer (pid " +
                    std::to_string(header.consumer_pid.load()) + ")");
  }
  return checked;
}

namespace {

// Opens and maps `name`, checks its ownership and mode, and validates every header field against
// the segment's size before anything is indexed.
RingConsumer::Mapping map_and_validate(const std::string& name, const RingShape* expected,
                                       RingShape* shape, uint64_t* consumed) {
  const std::string where = "ring " + name + ": ";
  const int fd = shm_open(name.c_str(), O_RDWR, 0);
  if (fd < 0) throw RingError(system_error(where + "cannot open"));
  MappingGuard guard(fd);
  struct stat status {};
  if (fstat(fd, &status) != 0) throw RingError(system_error(where + "fstat"));
  if (status.st_uid != geteuid()) {
    throw RingError(where + "owned by uid " + std::to_string(status.st_uid) + ", not this user (" +
                    std::to_string(geteuid()) + ")");
  }
  if ((status.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(status.st_mode & 07777));
    throw RingError(where + "mode " + mode + " lets other users in; a ring must be 0600");
  }
  const auto size = static_cast<uint64_t>(status.st_size);
  // Mapped only once the size is known to be that of a ring at all.
  check_segment_size(name, size);
  guard.map(size, PROT_READ | PROT_WRITE);
  const RingHeaderCheck checked = validate_ring_header(guard.base(), size, name, expected);
  *shape = checked.shape;
  *consumed = checked.consumed;
  return guard.release();
}

}  // namespace

RingConsumer::RingConsumer(const std::string& name, double peer_timeout_seconds,
                           const RingShape* expected)
    : RingConsumer(
          [&] {
            Attached attached;
            attached.name = name;
            attached.mapping =
                map_and_validate(name, expected, &attached.shape, &attached.consumed);
            return attached;
          }(),
          peer_timeout_seconds) {}

RingConsumer::RingConsumer(Attached attached, double peer_timeout_seconds)
    : ShmRing(Side::consumer, std::move(attached.name), attached.mapping, attached.shape,
              peer_timeout_seconds),
      consumed_(attached.consumed) {
  // Claimed atomically (of two consumers attaching at once, one is refused), and the pid and
  // heartbeat are in place before the producer sees the attached flag and checks them.
  int32_t nobody = 0;
  if (!header().consumer_pid.compare_exchange_strong(nobody, getpid())) {
    throw RingError("ring " + name_ + ": already has a consumer (pid " + std::to_string(nobody) +
                    ")");
  }
  header().consumer_heartbeat_ns.store(monotonic_ns());
  header().state.fetch_or(ring_layout::kConsumerAttached);
}

RingConsumer::~RingConsumer() {
  header().state.fetch_or(ring_layout::kConsumerClosed);
  notify(header().consumed_signal);
}

uint64_t RingConsumer::checked_produced() const {
  const uint64_t produced = header().produced.load(std::memory_order_acquire);
  if (produced < consumed_ || produced - consumed_ > shape().slot_count) {
    throw RingError("ring " + name_ + ": corrupt header: produced counter " +
                    std::to_string(produced) + " is not within " + std::to_string(consumed_) +
                    " .. " + std::to_string(consumed_) + " + " +
                    std::to_string(shape().slot_count) + " slots");
  }
  return produced;
}

void RingConsumer::check_peer() {
  const int32_t pid = header().producer_pid.load();
  if (header().state.load() & ring_layout::kProducerClosed) {
    throw RingPeerError("data service (pid " + std::to_string(pid) + ") shut down (ring " + name_ +
                        ")");
  }
  const PeerProblem problem = peer_problem(
      "data service", pid, header().producer_heartbeat_ns.load(std::memory_order_relaxed));
  if (problem.text.empty()) return;
  // A producer that died cannot unlink its segment: the consumer does, so it never outlives the
  // job.
  unlink();
  throw RingPeerError(problem.text + " (ring " + name_ + ")", problem.silent);
}

void RingConsumer::seek(uint64_t sequence) {
  if (sequence < consumed_ || sequence > checked_produced()) {
    throw RingError("ring " + name_ + ": cannot continue at batch " + std::to_string(sequence) +
                    ": it is not between the next unread (" + std::to_string(consumed_) +
                    ") and the last published (" + std::to_string(header().produced.load()) + ")");
  }
  consumed_ = sequence;
  header().consumed.store(consumed_, std::memory_order_release);
  notify(header().consumed_signal);
}

RingBatch RingConsumer::read() {
  RingBatch out;
  read(out);
  return out;
}

void RingConsumer::read(RingBatch& out) {
  wait(
      header().produced_signal, [&] { return checked_produced() > consumed_; }, nullptr);
  read_ring_slot(slot(consumed_), shape(), consumed_, name_, out);
  ++consumed_;
  header().consumed.store(consumed_, std::memory_order_release);
  notify(header().consumed_signal);
}

void read_ring_slot(const unsigned char* slot, const RingShape& shape, uint64_t sequence,
                    const std::string& name, RingBatch& out) {
  const auto& slot_header = *reinterpret_cast<const SlotHeader*>(slot);
  const uint64_t stored_sequence = slot_header.sequence.load(std::memory_order_acquire);
  if (stored_sequence != sequence + 1) {
    throw RingError("ring " + name + ": corrupt slot " +
                    std::to_string(sequence % shape.slot_count) + ": holds sequence " +
                    std::to_string(stored_sequence) + ", expected " + std::to_string(sequence + 1));
  }
  out.epoch = read_once(slot_header.epoch);
  out.step = read_once(slot_header.step);
  const int32_t count = read_once(slot_header.count);
  if (count < 0 || count > shape.batch_capacity) {
    throw RingError("ring " + name + ": corrupt slot: batch of " + std::to_string(count) +
                    " patches in slots of " + std::to_string(shape.batch_capacity));
  }
  PatchBatch& batch = out.batch;
  batch.count = count;
  batch.rows = shape.patch_rows;
  batch.cols = shape.patch_cols;
  const uint64_t pixels = uint64_t(count) * shape.patch_rows * shape.patch_cols;
  const ring_layout::SlotLayout at =
      ring_layout::slot_layout(shape.patch_rows, shape.patch_cols, shape.batch_capacity);
  // assign, not resize and copy: a fresh batch (RingConsumer::read() returns one each time) is
  // not zero-filled first (7.8 MB of writes per batch at the paper's size).
  const auto copy = [&](auto& vector, uint64_t offset, uint64_t elements) {
    using Element = typename std::decay_t<decltype(vector)>::value_type;
    const auto* first = reinterpret_cast<const Element*>(slot + offset);
    vector.assign(first, first + elements);
  };
  copy(batch.images, at.images, pixels);
  copy(batch.masks, at.masks, pixels);
  copy(batch.labels, at.labels, count);
  copy(batch.sample_indices, at.sample_indices, count);
  copy(batch.crop_rows, at.crop_rows, count);
  copy(batch.crop_cols, at.crop_cols, count);
}

// ---------------------------------------------------------------------------------------------
// HeartbeatThread.

HeartbeatThread::HeartbeatThread(ShmRing& ring, std::chrono::milliseconds interval) {
  ring.beat();
  thread_ = std::thread([this, &ring, interval] {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!wake_.wait_for(lock, interval, [this] { return stopping_; })) ring.beat();
  });
}

HeartbeatThread::~HeartbeatThread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::chrono::milliseconds HeartbeatThread::interval_for(double peer_timeout_seconds) {
  return std::chrono::milliseconds(
      std::clamp<long long>(static_cast<long long>(peer_timeout_seconds * 1000 / 4), 10, 1000));
}

}  // namespace hds::transport
