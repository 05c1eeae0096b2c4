// Shared-memory ring (docs/design.md §5): one POSIX shm segment per trainer rank carrying batches
// from hds-data-service (the producer, which creates and unlinks it) to the trainer (the consumer,
// which attaches by name). Fixed-size slots of one batch each; lock-free counters in the mapping;
// both sides block on futexes, never spin, and detect a dead or hung peer within a bounded time
// (heartbeats plus process liveness). The consumer validates every header field before use, so a
// corrupt or hostile segment yields a RingError, never an out-of-bounds access. Binary format:
// hds/transport/shm_ring_layout.h.
//
// Lifetime: the producer unlinks its segment when destroyed (clean shutdown, or after it found
// its consumer dead). If the producer is killed with SIGKILL it cannot; the consumer then finds
// it dead and unlinks the name itself, and a restarted producer reclaims a segment whose
// producer is gone. Only when both sides die at once does a segment stay in /dev/shm
// (hds-<job>-r<rank>); a job epilog can remove /dev/shm/hds-<job>-*.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "hds/transport/patch_batch.h"
#include "hds/transport/shm_ring_layout.h"

namespace hds::transport {

// A ring problem: a bad name or shape, a failed system call, a corrupt or inconsistent segment.
// what() names the ring and the field, e.g.
// "ring /hds-job-r0: corrupt header: slot_count 0 is outside 1..1024".
class RingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The other side died, hung, or closed its end, e.g.
// "data service (pid 1234) stopped responding: no heartbeat for 10.0 s (ring /hds-job-r0)".
class RingPeerError : public RingError {
 public:
  explicit RingPeerError(const std::string& what, bool silent = false)
      : RingError(what), silent_(silent) {}
  // The peer is alive but its heartbeat stopped (hung, stopped, or too slow), rather than gone.
  bool silent() const { return silent_; }

 private:
  bool silent_;
};

// What a ring carries: slot_count slots, each one batch of up to batch_capacity patches. No
// defaults: the server's options and the job's configuration decide (check_ring_shape refuses 0).
struct RingShape {
  uint32_t slot_count = 0;
  int32_t patch_rows = 0;
  int32_t patch_cols = 0;
  int32_t batch_capacity = 0;
};

// Throws RingError naming the field when `shape` is outside the limits of shm_ring_layout.h.
void check_ring_shape(const RingShape& shape);

// Bytes of one slot and of a whole segment for a valid shape.
uint64_t ring_slot_bytes(const RingShape& shape);
uint64_t ring_segment_bytes(const RingShape& shape);

// The segment name of `rank` in job `job_id` (hds::common::ring_name: "/hds-<job_id>-r<rank>").
// Throws RingError unless the job id follows hds::common::kJobIdRule and rank is non-negative.
std::string ring_name(const std::string& job_id, int rank);

// A batch and where it belongs in the stream.
struct RingBatch {
  int epoch = 0;  // 1-based
  int step = 0;   // 0-based
  PatchBatch batch;
};

// The mapping both ends share. Not copyable; beat() is thread-safe, the rest is per role.
class ShmRing {
 public:
  struct Mapping {  // an open, mapped segment
    int fd = -1;
    void* base = nullptr;
    uint64_t bytes = 0;
  };

  virtual ~ShmRing();
  ShmRing(const ShmRing&) = delete;
  ShmRing& operator=(const ShmRing&) = delete;

  const std::string& name() const { return name_; }
  const RingShape& shape() const { return shape_; }
  double peer_timeout_seconds() const { return peer_timeout_seconds_; }

  // Records that this side is alive (CLOCK_MONOTONIC now). Call at least every
  // peer_timeout / 4; HeartbeatThread does. Thread-safe.
  void beat();

  // Removes the name from /dev/shm; the mapping stays usable. Idempotent.
  void unlink();

 protected:
  enum class Side { producer, consumer };
  // Takes ownership of `mapping` (unmapped and closed on destruction).
  ShmRing(Side side, std::string name, Mapping mapping, RingShape shape,
          double peer_timeout_seconds);

  ring_layout::RingHeader& header() const;
  unsigned char* slot(uint64_t sequence) const;  // the slot of ring sequence number `sequence`
  const ring_layout::SlotLayout& layout() const { return layout_; }

  // Blocks on the futex word `signal` until ready() holds (true), `stop` is set (false), or the
  // peer is found dead (throws RingPeerError). Checks the peer at least every 100 ms.
  bool wait(std::atomic<uint32_t>& signal, const std::function<bool()>& ready,
            const std::atomic<bool>* stop);
  // Bumps `signal` and wakes every waiter on it.
  static void notify(std::atomic<uint32_t>& signal);
  // Throws RingPeerError when the other side has exited, stopped beating or closed its end.
  virtual void check_peer() = 0;
  // Why the peer process `pid` (named `peer` in the message) is gone: it exited, or its last
  // heartbeat is older than the peer timeout (silent). An empty text when it looks alive.
  struct PeerProblem {
    std::string text;
    bool silent = false;
  };
  PeerProblem peer_problem(const char* peer, int32_t pid, int64_t heartbeat_ns) const;

  const Side side_;
  const std::string name_;

 private:
  Mapping mapping_;
  RingShape shape_;
  ring_layout::SlotLayout layout_;
  double peer_timeout_seconds_;
  std::atomic<bool> unlinked_{false};
};

// The data service's end: creates the segment (mode 0600, exclusive) and fills it. Several
// worker threads may fill slots at once (wait_for_slot and write are thread-safe for distinct
// sequence numbers); publish() must be called in sequence order.
class RingProducer : public ShmRing {
 public:
  // Creates `name` for `shape`. A segment of that name left by a producer that no longer exists
  // is reclaimed; one whose producer is alive is an error.
  RingProducer(const std::string& name, const RingShape& shape, double peer_timeout_seconds);
  // Marks the ring closed (the consumer sees "shut down"), unlinks and unmaps it.
  ~RingProducer() override;

  // Blocks until the slot of `sequence` is free (the consumer has read sequence - slot_count).
  // Returns false when `stop` is set first; throws RingPeerError when the consumer is gone and
  // RingError when its counter is corrupt.
  bool wait_for_slot(uint64_t sequence, const std::atomic<bool>& stop);
  // Copies `batch` into the slot of `sequence`. Throws RingError when it does not fit the shape.
  void write(uint64_t sequence, int epoch, int step, const PatchBatch& batch);
  // Makes batch `sequence` visible: it must equal produced().
  void publish(uint64_t sequence);
  uint64_t produced() const;
  // Batches the trainer has read (its counter in the shared header, as it stands now).
  uint64_t consumed() const;
  // Wakes producer threads blocked in wait_for_slot so that they see their stop flag.
  void wake_waiters();
  // Marks the ring closed: no more batches. Idempotent; the destructor calls it.
  void close();
  // Throws RingPeerError when no trainer attached within the peer timeout of the ring's creation,
  // or the one that did has detached, exited or gone silent. Thread-safe.
  void check_peer() override;

 private:
  std::chrono::steady_clock::time_point created_;
};

// The trainer's end: attaches to an existing segment, validates it and reads batches in order.
// Not thread-safe apart from beat().
class RingConsumer : public ShmRing {
 public:
  // Maps `name` and validates every header field against the segment's size. When `expected`
  // is given the shape must equal it (what the control channel announced). Throws RingError.
  RingConsumer(const std::string& name, double peer_timeout_seconds,
               const RingShape* expected = nullptr);
  // Marks the consumer closed so that the producer stops filling the ring; unmaps.
  ~RingConsumer() override;

  // Continues reading at `sequence` (the first batch of a stream the producer restarted),
  // skipping what is queued before it. Throws RingError unless consumed() <= sequence <=
  // produced.
  void seek(uint64_t sequence);
  // Waits for the next batch and copies it out. Throws RingPeerError when the producer is gone
  // (having unlinked the segment if the producer died without doing so) and RingError when the
  // segment is inconsistent.
  RingBatch read();
  // The same into `out`, reusing its buffers (no allocation once they are large enough).
  void read(RingBatch& out);
  uint64_t consumed() const { return consumed_; }

 private:
  struct Attached;  // a mapped and validated segment, before it becomes a RingConsumer
  RingConsumer(Attached attached, double peer_timeout_seconds);
  uint64_t checked_produced() const;  // the producer's counter, validated against consumed_
  void check_peer() override;
  uint64_t consumed_ = 0;
};

// The consumer's checks as pure functions over mapped bytes: RingConsumer uses them, and tests
// and fuzzers reach them without a segment.
struct RingHeaderCheck {
  RingShape shape;
  uint64_t consumed = 0;  // the consumer counter: where reading continues
};

// Validates the header at `segment` (64-byte aligned, `segment_bytes` long): every field is read
// once and checked against the limits of shm_ring_layout.h, the segment's size and `expected`
// (when given) before anything is indexed. Reads the first kHeaderBytes only. Throws RingError
// naming `name` and the field.
RingHeaderCheck validate_ring_header(const void* segment, uint64_t segment_bytes,
                                     const std::string& name, const RingShape* expected = nullptr);

// Copies batch `sequence` out of `slot` (the slot_bytes of a ring of the validated `shape`)
// after checking the slot's sequence number and patch count; reads nothing outside the slot.
// Throws RingError naming `name` for a slot that does not hold that batch.
void read_ring_slot(const unsigned char* slot, const RingShape& shape, uint64_t sequence,
                    const std::string& name, RingBatch& out);

// Calls ring.beat() every `interval` on its own thread until destroyed.
class HeartbeatThread {
 public:
  HeartbeatThread(ShmRing& ring, std::chrono::milliseconds interval);
  ~HeartbeatThread();
  HeartbeatThread(const HeartbeatThread&) = delete;
  HeartbeatThread& operator=(const HeartbeatThread&) = delete;

  // A quarter of the peer timeout, within [10 ms, 1 s]: several beats per timeout.
  static std::chrono::milliseconds interval_for(double peer_timeout_seconds);

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace hds::transport
