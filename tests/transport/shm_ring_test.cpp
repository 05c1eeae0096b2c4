// The shared-memory ring: every batch arrives intact and in order between two processes at full
// speed; a killed producer or consumer is reported within the timeout and the segment removed;
// a corrupt or hostile header gives a RingError, never a crash (run under ASan/UBSan too).
#include "hds/transport/shm_ring.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <functional>
#include <random>
#include <thread>

#include "hds/test/child_process.h"
#include "hds/test/eventually.h"
#include "hds/transport/shm_ring_layout.h"
#include "ring_pattern.h"

namespace hds::transport {
namespace {

using hds::test::ChildProcess;
using hds::test::eventually;
using hds::test::shm_exists;
using hds::transport::testing::pattern_batch;
using hds::transport::testing::pattern_epoch;
using hds::transport::testing::pattern_step;
using Clock = std::chrono::steady_clock;

const std::string kPeer = HDS_RING_PEER_BINARY;

// A ring name no other test (or test run) uses.
std::string unique_ring_name(const std::string& what) {
  static int counter = 0;
  return ring_name(
      "test-" + what + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++), 0);
}

// The paper's batches in the service's default rings: 4 slots of 8 patches of 512 x 384.
RingShape paper_shape() { return RingShape{4, 512, 384, 8}; }

RingShape small_shape(uint32_t slots = 4) {
  RingShape shape;
  shape.slot_count = slots;
  shape.patch_rows = 32;
  shape.patch_cols = 24;
  shape.batch_capacity = 5;
  return shape;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The RingError message of `action`, or "" (and a failure) when it does not throw one.
std::string ring_error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const RingError& error) {
    return error.what();
  }
  ADD_FAILURE() << "no RingError thrown";
  return "";
}

void expect_same_batch(const RingBatch& got, uint64_t sequence, const RingShape& shape) {
  const PatchBatch expected =
      pattern_batch(sequence, shape.patch_rows, shape.patch_cols, shape.batch_capacity);
  ASSERT_EQ(got.epoch, pattern_epoch(sequence)) << sequence;
  ASSERT_EQ(got.step, pattern_step(sequence)) << sequence;
  ASSERT_EQ(got.batch.count, expected.count) << sequence;
  ASSERT_EQ(got.batch.rows, shape.patch_rows);
  ASSERT_EQ(got.batch.cols, shape.patch_cols);
  ASSERT_EQ(got.batch.images, expected.images) << sequence;
  ASSERT_EQ(got.batch.masks, expected.masks) << sequence;
  ASSERT_EQ(got.batch.labels, expected.labels) << sequence;
  ASSERT_EQ(got.batch.sample_indices, expected.sample_indices) << sequence;
  ASSERT_EQ(got.batch.crop_rows, expected.crop_rows) << sequence;
  ASSERT_EQ(got.batch.crop_cols, expected.crop_cols) << sequence;
}

void publish_pattern(RingProducer& ring, uint64_t sequence) {
  const RingShape& shape = ring.shape();
  ring.write(sequence, pattern_epoch(sequence), pattern_step(sequence),
             pattern_batch(sequence, shape.patch_rows, shape.patch_cols, shape.batch_capacity));
  ring.publish(sequence);
}

// --- names and shapes ------------------------------------------------------------------------

TEST(RingName, is_derived_from_job_and_rank) {
  EXPECT_EQ(ring_name("job-17_a", 3), "/hds-job-17_a-r3");
}

TEST(RingName, refuses_unsafe_job_ids_and_negative_ranks) {
  for (const std::string& job :
       std::vector<std::string>{"", "a/b", "../x", "a b", "x.y", std::string(65, 'a')}) {
    EXPECT_NE(ring_error_of([&] { ring_name(job, 0); }).find("job id"), std::string::npos) << job;
  }
  EXPECT_NE(ring_error_of([] { ring_name("job", -1); }).find("rank -1"), std::string::npos);
}

TEST(RingShape, out_of_limits_is_refused_naming_the_field) {
  RingShape shape = small_shape();
  shape.slot_count = 0;
  EXPECT_NE(ring_error_of([&] { check_ring_shape(shape); }).find("slot_count 0"),
            std::string::npos);
  shape = small_shape();
  shape.batch_capacity = 100000;
  EXPECT_NE(ring_error_of([&] { check_ring_shape(shape); }).find("batch_capacity"),
            std::string::npos);
}

TEST(RingLayout, slots_are_page_multiples_holding_every_array) {
  const RingShape shape = paper_shape();
  const uint64_t slot = ring_slot_bytes(shape);
  EXPECT_EQ(slot % 4096, 0u);
  EXPECT_GE(slot, 8ull * 512 * 384 * 5 + 8 * 13);
  EXPECT_EQ(ring_segment_bytes(shape), 4096 + 4 * slot);
}

// --- one process -------------------------------------------------------------------------------

TEST(ShmRing, segment_is_owner_only_and_removed_by_its_producer) {
  const std::string name = unique_ring_name("mode");
  {
    RingProducer producer(name, small_shape(), 5);
    struct stat status {};
    ASSERT_EQ(stat(("/dev/shm" + name).c_str(), &status), 0);
    EXPECT_EQ(status.st_mode & 0777, 0600u);
    EXPECT_EQ(status.st_size, static_cast<off_t>(ring_segment_bytes(small_shape())));
  }
  EXPECT_FALSE(shm_exists(name));
}

TEST(ShmRing, a_second_producer_of_a_live_ring_is_refused) {
  const std::string name = unique_ring_name("twice");
  RingProducer first(name, small_shape(), 5);
  const std::string message = ring_error_of([&] { RingProducer second(name, small_shape(), 5); });
  EXPECT_NE(message.find("already exists"), std::string::npos) << message;
  EXPECT_NE(message.find(std::to_string(getpid())), std::string::npos) << message;
}

TEST(ShmRing, batches_pass_between_threads_in_order) {
  const std::string name = unique_ring_name("threads");
  RingShape odd = small_shape(3);  // arrays that are no multiple of 64 bytes: the copy tails
  odd.patch_rows = 33;
  odd.patch_cols = 7;
  RingProducer producer(name, odd, 5);
  RingConsumer consumer(name, 5, &producer.shape());
  constexpr int kBatches = 200;
  std::thread writer([&] {
    const std::atomic<bool> never{false};
    for (uint64_t s = 0; s < kBatches; ++s) {
      ASSERT_TRUE(producer.wait_for_slot(s, never));
      publish_pattern(producer, s);
    }
  });
  RingBatch got;
  for (uint64_t s = 0; s < kBatches; ++s) {
    consumer.read(got);
    expect_same_batch(got, s, producer.shape());
    if (::testing::Test::HasFatalFailure()) break;
  }
  writer.join();
}

TEST(ShmRing, seek_skips_queued_batches) {
  const std::string name = unique_ring_name("seek");
  RingProducer producer(name, small_shape(4), 5);
  RingConsumer consumer(name, 5);
  const std::atomic<bool> never{false};
  for (uint64_t s = 0; s < 3; ++s) {
    ASSERT_TRUE(producer.wait_for_slot(s, never));
    publish_pattern(producer, s);
  }
  consumer.seek(2);
  expect_same_batch(consumer.read(), 2, producer.shape());
  EXPECT_NE(ring_error_of([&] { consumer.seek(1); }).find("cannot continue at batch 1"),
            std::string::npos);
  EXPECT_NE(ring_error_of([&] { consumer.seek(9); }).find("cannot continue at batch 9"),
            std::string::npos);
}

TEST(ShmRing, a_batch_that_does_not_fit_is_refused) {
  const std::string name = unique_ring_name("fit");
  RingProducer producer(name, small_shape(), 5);
  PatchBatch batch = pattern_batch(5, 32, 24, 5);  // 5 patches: the capacity
  producer.write(0, 1, 0, batch);
  batch = pattern_batch(6, 32, 24, 6);  // 6 patches: one too many
  EXPECT_NE(ring_error_of([&] { producer.write(0, 1, 0, batch); }).find("does not fit"),
            std::string::npos);
  batch = pattern_batch(3, 16, 24, 5);  // patches of another size
  EXPECT_NE(ring_error_of([&] { producer.write(0, 1, 0, batch); }).find("does not fit"),
            std::string::npos);
}

TEST(ShmRing, producer_waits_for_a_free_slot_and_stops_on_request) {
  const std::string name = unique_ring_name("stop");
  RingProducer producer(name, small_shape(2), 5);
  RingConsumer consumer(name, 5);
  HeartbeatThread heartbeat(consumer, HeartbeatThread::interval_for(5));
  std::atomic<bool> stop{false};
  for (uint64_t s = 0; s < 2; ++s) {
    ASSERT_TRUE(producer.wait_for_slot(s, stop));
    publish_pattern(producer, s);
  }
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stop = true;
    producer.wake_waiters();
  });
  const auto start = Clock::now();
  EXPECT_FALSE(producer.wait_for_slot(2, stop));  // the ring is full until stopped
  EXPECT_LT(seconds_since(start), 1.0);
  stopper.join();
}

// --- two processes -----------------------------------------------------------------------------

std::vector<std::string> producer_arguments(const std::string& name, const RingShape& shape,
                                            long long batches, double timeout) {
  return {"produce",
          name,
          std::to_string(shape.slot_count),
          std::to_string(shape.patch_rows),
          std::to_string(shape.patch_cols),
          std::to_string(shape.batch_capacity),
          std::to_string(batches),
          std::to_string(timeout)};
}

std::vector<std::string> consumer_arguments(const std::string& name, const RingShape& shape,
                                            long long batches, double timeout) {
  return {"consume",
          name,
          std::to_string(shape.patch_rows),
          std::to_string(shape.patch_cols),
          std::to_string(shape.batch_capacity),
          std::to_string(batches),
          std::to_string(timeout)};
}

// Streams `batches` pattern batches from a producer process to this one, checking each.
void stream_between_processes(const RingShape& shape, long long batches) {
  const std::string name = unique_ring_name("stream");
  ChildProcess producer(kPeer, producer_arguments(name, shape, batches, 5));
  ASSERT_TRUE(producer.wait_for_output("ready", 10)) << producer.output();
  RingConsumer consumer(name, 5, &shape);
  HeartbeatThread heartbeat(consumer, HeartbeatThread::interval_for(5));
  RingBatch got;
  const auto start = Clock::now();
  for (uint64_t s = 0; s < static_cast<uint64_t>(batches); ++s) {
    consumer.read(got);
    expect_same_batch(got, s, shape);
    if (::testing::Test::HasFatalFailure()) return;
  }
  const double seconds = seconds_since(start);
  const auto status = producer.wait_exit(10);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << producer.output();
  EXPECT_FALSE(shm_exists(name));
  std::printf("%lld batches of %d x %dx%d in %.2f s (%.0f batches/s, checks included)\n", batches,
              shape.batch_capacity, shape.patch_rows, shape.patch_cols, seconds, batches / seconds);
}

TEST(ShmRingProcesses, thousands_of_batches_arrive_intact_and_in_order) {
  RingShape shape = small_shape(4);
  shape.patch_rows = 64;
  shape.patch_cols = 48;
  shape.batch_capacity = 8;
  stream_between_processes(shape, 4000);
}

TEST(ShmRingProcesses, paper_sized_batches_arrive_intact) {
  stream_between_processes(paper_shape(), 60);
}

TEST(ShmRingProcesses, killed_producer_is_reported_at_once_once_reaped) {
  const std::string name = unique_ring_name("kill-producer");
  const RingShape shape = small_shape();
  ChildProcess producer(kPeer, producer_arguments(name, shape, -1, 1.0));
  ASSERT_TRUE(producer.wait_for_output("ready", 10)) << producer.output();
  RingConsumer consumer(name, 1.0);
  HeartbeatThread heartbeat(consumer, HeartbeatThread::interval_for(1.0));
  expect_same_batch(consumer.read(), 0, shape);
  expect_same_batch(consumer.read(), 1, shape);
  producer.kill_and_reap();
  const auto start = Clock::now();
  try {
    for (uint64_t s = 2; s < 2 + shape.slot_count + 1; ++s) {
      expect_same_batch(consumer.read(), s, shape);  // what was queued is still good
    }
    FAIL() << "reads continued after the producer was killed";
  } catch (const RingPeerError& error) {
    EXPECT_LT(seconds_since(start), 1.0);
    const std::string message = error.what();
    EXPECT_NE(message.find("data service (pid " + std::to_string(producer.pid()) + ") exited"),
              std::string::npos)
        << message;
  }
  EXPECT_FALSE(shm_exists(name)) << "the consumer removes a dead producer's segment";
}

TEST(ShmRingProcesses, killed_unreaped_producer_is_reported_by_its_silence_within_the_timeout) {
  const std::string name = unique_ring_name("zombie-producer");
  const RingShape shape = small_shape();
  ChildProcess producer(kPeer, producer_arguments(name, shape, -1, 1.0));
  ASSERT_TRUE(producer.wait_for_output("ready", 10)) << producer.output();
  RingConsumer consumer(name, 1.0);
  HeartbeatThread heartbeat(consumer, HeartbeatThread::interval_for(1.0));
  expect_same_batch(consumer.read(), 0, shape);
  producer.signal(SIGKILL);  // not reaped: a zombie still "exists" for kill(pid, 0)
  const auto start = Clock::now();
  try {
    for (uint64_t s = 1; s < 1 + shape.slot_count + 1; ++s) consumer.read();
    FAIL() << "reads continued after the producer was killed";
  } catch (const RingPeerError& error) {
    const double seconds = seconds_since(start);
    EXPECT_GE(seconds, 0.7);  // its last heartbeat was at most 250 ms before the kill
    EXPECT_LT(seconds, 1.5);  // timeout 1 s plus one 100 ms wait slice, with margin
    const std::string message = error.what();
    EXPECT_NE(message.find("data service (pid " + std::to_string(producer.pid()) +
                           ") stopped responding: no heartbeat for 1."),
              std::string::npos)
        << message;
  }
  EXPECT_FALSE(shm_exists(name));
}

TEST(ShmRingProcesses, killed_consumer_makes_the_producer_remove_the_segment) {
  const std::string name = unique_ring_name("kill-consumer");
  const RingShape shape = small_shape(2);
  ChildProcess producer(kPeer, producer_arguments(name, shape, -1, 1.0));
  ASSERT_TRUE(producer.wait_for_output("ready", 10)) << producer.output();
  ChildProcess consumer(kPeer, consumer_arguments(name, shape, -1, 1.0));
  ASSERT_TRUE(consumer.wait_for_output("ready", 10)) << consumer.output();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // batches are flowing
  consumer.kill_and_reap();
  const auto start = Clock::now();
  const auto status = producer.wait_exit(5);
  ASSERT_TRUE(status.has_value()) << "the producer did not notice: " << producer.output();
  EXPECT_LT(seconds_since(start), 1.5);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 3) << producer.output();
  EXPECT_NE(producer.output().find("trainer (pid " + std::to_string(consumer.pid()) + ") exited"),
            std::string::npos)
      << producer.output();
  EXPECT_FALSE(shm_exists(name));
}

TEST(ShmRingProcesses, a_consumer_that_never_attaches_is_given_up_after_the_timeout) {
  const std::string name = unique_ring_name("no-consumer");
  ChildProcess producer(kPeer, producer_arguments(name, small_shape(1), 5, 1.0));
  ASSERT_TRUE(producer.wait_for_output("ready", 10)) << producer.output();
  const auto status = producer.wait_exit(5);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 3) << producer.output();
  EXPECT_NE(producer.output().find("no trainer attached"), std::string::npos) << producer.output();
  EXPECT_FALSE(shm_exists(name));
}

TEST(ShmRingProcesses, a_segment_left_by_a_killed_producer_is_reclaimed) {
  const std::string name = unique_ring_name("reclaim");
  ChildProcess producer(kPeer, producer_arguments(name, small_shape(), 1, 30));
  ASSERT_TRUE(producer.wait_for_output("ready", 10)) << producer.output();
  producer.kill_and_reap();
  ASSERT_TRUE(shm_exists(name));  // nobody attached to notice
  RingProducer again(name, small_shape(), 5);
  EXPECT_TRUE(shm_exists(name));
}

// --- corrupt and hostile segments ------------------------------------------------------------

// A real segment whose raw bytes the test can damage through a second mapping.
class CorruptSegment : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = unique_ring_name("corrupt");
    producer_ = std::make_unique<RingProducer>(name_, small_shape(), 5);
    const int fd = shm_open(name_.c_str(), O_RDWR, 0);
    ASSERT_GE(fd, 0);
    bytes_ = ring_segment_bytes(small_shape());
    raw_ = static_cast<unsigned char*>(
        mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    close(fd);
    ASSERT_NE(raw_, MAP_FAILED);
  }
  void TearDown() override {
    if (raw_ != nullptr && raw_ != MAP_FAILED) munmap(raw_, bytes_);
  }
  ring_layout::RingHeader& header() { return *reinterpret_cast<ring_layout::RingHeader*>(raw_); }
  unsigned char* slot(uint32_t index) {
    return raw_ + ring_layout::kHeaderBytes + index * ring_slot_bytes(small_shape());
  }
  template <class T>
  void poke(T& field, T value) {
    std::memcpy(static_cast<void*>(&field), &value, sizeof value);
  }
  std::string attach_error() {
    return ring_error_of([&] { RingConsumer consumer(name_, 5); });
  }
  void publish(uint64_t sequence) {
    const std::atomic<bool> never{false};
    ASSERT_TRUE(producer_->wait_for_slot(sequence, never));
    publish_pattern(*producer_, sequence);
  }

  std::string name_;
  std::unique_ptr<RingProducer> producer_;
  unsigned char* raw_ = nullptr;
  size_t bytes_ = 0;
};

TEST_F(CorruptSegment, bad_magic_is_not_a_ring) {
  poke(header().magic, uint64_t{0xdeadbeefdeadbeef});
  EXPECT_NE(attach_error().find("magic 0xdeadbeefdeadbeef"), std::string::npos);
}

TEST_F(CorruptSegment, another_version_is_named) {
  poke(header().version, uint32_t{7});
  const std::string message = attach_error();
  EXPECT_NE(message.find("format version 7 is not supported"), std::string::npos) << message;
}

TEST_F(CorruptSegment, header_size_is_checked) {
  poke(header().header_bytes, uint32_t{1});
  EXPECT_NE(attach_error().find("header_bytes 1"), std::string::npos);
}

TEST_F(CorruptSegment, slot_count_zero_or_huge_is_refused) {
  poke(header().slot_count, uint32_t{0});
  EXPECT_NE(attach_error().find("slot_count 0"), std::string::npos);
  poke(header().slot_count, uint32_t{0xffffffff});
  EXPECT_NE(attach_error().find("slot_count 4294967295"), std::string::npos);
  // Plausible but more slots than the segment holds.
  poke(header().slot_count, uint32_t{5});
  EXPECT_NE(attach_error().find("need a segment of"), std::string::npos);
}

TEST_F(CorruptSegment, patch_shape_must_match_the_slot_size) {
  poke(header().patch_rows, int32_t{-3});
  EXPECT_NE(attach_error().find("patch_rows -3"), std::string::npos);
  poke(header().patch_rows, int32_t{64});  // valid on its own, but the slots are too small
  EXPECT_NE(attach_error().find("slot_bytes"), std::string::npos);
  poke(header().patch_rows, int32_t{32});
  poke(header().batch_capacity, int32_t{1 << 20});
  EXPECT_NE(attach_error().find("batch_capacity"), std::string::npos);
}

TEST_F(CorruptSegment, slot_bytes_must_match_the_shape) {
  poke(header().slot_bytes, uint64_t{1} << 62);
  EXPECT_NE(attach_error().find("slot_bytes"), std::string::npos);
  poke(header().slot_bytes, uint64_t{4096});
  EXPECT_NE(attach_error().find("slot_bytes 4096"), std::string::npos);
}

TEST_F(CorruptSegment, counters_out_of_range_are_refused_at_attach) {
  header().produced.store(uint64_t{1} << 63);
  EXPECT_NE(attach_error().find("counters produced"), std::string::npos);
  header().produced.store(2);
  header().consumed.store(3);
  EXPECT_NE(attach_error().find("counters produced 2 and consumed 3"), std::string::npos);
}

TEST_F(CorruptSegment, a_bad_producer_pid_is_refused) {
  header().producer_pid.store(-1);
  EXPECT_NE(attach_error().find("producer pid -1"), std::string::npos);
}

TEST_F(CorruptSegment, a_truncated_segment_is_refused) {
  const int fd = shm_open(name_.c_str(), O_RDWR, 0);
  ASSERT_EQ(ftruncate(fd, 4096 + 100), 0);
  close(fd);
  EXPECT_NE(attach_error().find("it has 4196"), std::string::npos);
}

TEST_F(CorruptSegment, a_segment_others_can_read_is_refused) {
  const int fd = shm_open(name_.c_str(), O_RDWR, 0);
  ASSERT_EQ(fchmod(fd, 0644), 0);
  close(fd);
  EXPECT_NE(attach_error().find("mode 0644"), std::string::npos);
}

TEST_F(CorruptSegment, counters_corrupted_after_attach_stop_the_reader) {
  RingConsumer consumer(name_, 5);
  publish(0);
  expect_same_batch(consumer.read(), 0, small_shape());
  header().produced.store(1000);
  EXPECT_NE(ring_error_of([&] { consumer.read(); }).find("produced counter 1000"),
            std::string::npos);
}

TEST_F(CorruptSegment, a_slot_with_a_wrong_sequence_or_count_is_refused) {
  RingConsumer consumer(name_, 5);
  publish(0);
  publish(1);
  auto& first = *reinterpret_cast<ring_layout::SlotHeader*>(slot(0));
  first.sequence.store(77);
  EXPECT_NE(ring_error_of([&] { consumer.read(); }).find("holds sequence 77, expected 1"),
            std::string::npos);
}

TEST_F(CorruptSegment, a_slot_count_beyond_capacity_is_refused) {
  RingConsumer consumer(name_, 5);
  publish(0);
  auto& first = *reinterpret_cast<ring_layout::SlotHeader*>(slot(0));
  poke(first.count, int32_t{1 << 30});
  EXPECT_NE(ring_error_of([&] { consumer.read(); }).find("batch of 1073741824 patches"),
            std::string::npos);
  poke(first.count, int32_t{-5});
  // The consumer did not advance: the same slot is read again.
  EXPECT_NE(ring_error_of([&] { consumer.read(); }).find("batch of -5 patches"), std::string::npos);
}

// Random damage to the header's fixed fields and counters, and to slot headers: attaching and
// reading either works or throws RingError; under ASan any out-of-bounds access would abort.
TEST_F(CorruptSegment, random_damage_never_crashes) {
  std::mt19937_64 random(12345);
  const std::vector<unsigned char> pristine(raw_, raw_ + ring_layout::kHeaderBytes);
  const size_t counters_end = offsetof(ring_layout::RingHeader, state) + 4;
  int attached = 0;
  for (int round = 0; round < 3000; ++round) {
    std::memcpy(raw_, pristine.data(), pristine.size());
    const int flips = 1 + static_cast<int>(random() % 4);
    for (int f = 0; f < flips; ++f) {
      const size_t at = random() % counters_end;
      raw_[at] = static_cast<unsigned char>(random());
    }
    try {
      RingConsumer consumer(name_, 0.05);
      ++attached;
      // Damage the slot header too, then read whatever the counters allow.
      auto* slot_header = slot(static_cast<uint32_t>(random() % 4));
      slot_header[random() % sizeof(ring_layout::SlotHeader)] =
          static_cast<unsigned char>(random());
      if (header().produced.load() > consumer.consumed()) consumer.read();
    } catch (const RingError&) {
    }
  }
  std::memcpy(raw_, pristine.data(), pristine.size());
  header().state.store(0);
  EXPECT_GT(attached, 0);  // some damage is harmless (heartbeats, signals)
}

}  // namespace
}  // namespace hds::transport
