// `hds-data-service serve`: the protocol (Hello, StartEpoch, refusals), batches equal to
// PatchSampler::batch computed in this process, rings removed when a rank goes away, and the real
// binary end to end (ready line, SIGTERM, kill -9).
#include "hds/data_server/data_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "hds/common/host_name.h"
#include "hds/config/config.h"
#include "hds/test/batch_expectations.h"
#include "hds/test/child_process.h"
#include "hds/test/eventually.h"
#include "hds/test/prometheus.h"
#include "hds/transport/shm_ring.h"
#include "test_helpers.h"

namespace hds::data {
namespace {

namespace fs = std::filesystem;
using hds::data_server::DataServer;
using hds::data_server::default_ring_budget;
using hds::data_server::kMaxConnectionsWaitingForHello;
using hds::data_server::ServeOptions;
using hds::data_server::ServiceMetrics;
using hds::test::ChildProcess;
using hds::test::eventually;
using hds::test::expect_same_batch;
using hds::test::shm_exists;
using hds::transport::ControlChannel;
using hds::transport::HeartbeatThread;
using hds::transport::ring_name;
using hds::transport::RingBatch;
using hds::transport::RingConsumer;
using hds::transport::RingPeerError;
using hds::transport::RingShape;

// 6 training films of 256 x 128, patches of 128 x 128, 2 a batch: 3 steps an epoch.
const std::vector<std::string> kTinyOverrides = {
    "data.image_rows=256", "data.image_cols=128", "data.patch_rows=128", "data.patch_cols=128",
    "data.phantom.train_count=6", "data.phantom.val_count=1", "data.phantom.test_count=0",
    "train.batch_size=2", "train.seed=5",
    // Tests run side by side: no service may take the default metrics port.
    "monitoring.metrics_port=0"};

hds::config::Config tiny_config() { return hds::config::parse_config("", "tiny", kTinyOverrides); }

std::string unique_job(const std::string& what) {
  static int counter = 0;
  return what + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

// A trainer rank speaking the protocol by hand.
class TestClient {
 public:
  explicit TestClient(const std::string& socket) : channel_(ControlChannel::connect(socket)) {}

  hds::control::Reply hello(const std::string& job, int rank, int world_size,
                            uint32_t version = hds::control::PROTOCOL_VERSION) {
    hds::control::Request request;
    request.mutable_hello()->set_protocol_version(version);
    request.mutable_hello()->set_job_id(job);
    request.mutable_hello()->set_rank(rank);
    request.mutable_hello()->set_world_size(world_size);
    return channel_.call(request, 5);
  }
  // Hello, then maps the announced ring.
  void attach(const std::string& job, int rank = 0, int world_size = 1) {
    const hds::control::Reply reply = hello(job, rank, world_size);
    ASSERT_FALSE(reply.has_error()) << reply.error();
    ASSERT_TRUE(reply.has_hello());
    answer_ = reply.hello();
    RingShape shape;
    shape.slot_count = answer_.slot_count();
    shape.patch_rows = answer_.patch_rows();
    shape.patch_cols = answer_.patch_cols();
    shape.batch_capacity = answer_.batch_capacity();
    ring_ = std::make_unique<RingConsumer>(answer_.ring_name(), 5, &shape);
    heartbeat_ = std::make_unique<HeartbeatThread>(*ring_, HeartbeatThread::interval_for(5));
  }
  void start(int epoch, int step) {
    hds::control::Request request;
    request.mutable_start_epoch()->set_epoch(epoch);
    request.mutable_start_epoch()->set_first_step(step);
    const hds::control::Reply reply = channel_.call(request, 5);
    ASSERT_FALSE(reply.has_error()) << reply.error();
    ring_->seek(reply.start_epoch().first_sequence());
  }
  RingBatch read() { return ring_->read(); }
  hds::control::Reply call(const hds::control::Request& request) {
    return channel_.call(request, 5);
  }
  bool closed_by_peer() {
    hds::control::Reply reply;
    return !channel_.receive(reply, 5);
  }
  const hds::control::HelloReply& answer() const { return answer_; }
  // The rank hangs: it keeps its connection and ring but stops beating.
  void stop_heartbeat() { heartbeat_.reset(); }
  RingConsumer& ring() { return *ring_; }
  void detach() {
    heartbeat_.reset();
    ring_.reset();
    channel_ = ControlChannel(-1, "closed");
  }

 private:
  ControlChannel channel_;
  hds::control::HelloReply answer_;
  std::unique_ptr<RingConsumer> ring_;
  std::unique_ptr<HeartbeatThread> heartbeat_;
};

// A DataServer on the tiny phantom set, running on its own thread.
class DataServerTest : public ::testing::Test {
 protected:
  // With metrics, on a free port (see MeteredDataServerTest).
  virtual bool metered() const { return false; }
  void SetUp() override {
    config_ = tiny_config();
    dataset_ = load_dataset(config_.data());
    sampler_ = std::make_unique<PatchSampler>(dataset_.train, sampler_options_for(config_));
    job_ = unique_job("server");
    options_.socket_path = (dir_.path() / "run" / "data.sock").string();
    options_.job_id = job_;
    options_.slot_count = 3;
    options_.workers_per_rank = 2;
    options_.peer_timeout_seconds = 5;
    options_.log = &log_;
    if (metered()) {
      // metrics_port + offset 1: the second of two free ports.
      const int port = hds::test::free_ports(2);
      ASSERT_GT(port, 0);
      hds::config::MonitoringConfig monitoring;
      monitoring.set_metrics_port(port);
      monitoring.set_data_service_port_offset(1);
      metrics_ = std::make_unique<ServiceMetrics>(monitoring);
      metrics_port_ = port + 1;
      options_.metrics = metrics_.get();
      options_.peer_timeout_seconds = 1;  // a silent trainer is dropped soon
    }
    server_ = std::make_unique<DataServer>(*sampler_, options_);
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    server_->stop();
    thread_.join();
    server_.reset();
  }
  std::string socket() const { return options_.socket_path; }

  testing::TempDir dir_;
  hds::config::Config config_;
  Dataset dataset_;
  std::unique_ptr<PatchSampler> sampler_;
  std::string job_;
  ServeOptions options_;
  std::ostringstream log_;  // written by the server thread; read only after TearDown's join
  std::unique_ptr<ServiceMetrics> metrics_;  // outlives the server
  int metrics_port_ = 0;
  std::unique_ptr<DataServer> server_;
  std::thread thread_;
};

TEST_F(DataServerTest, hello_describes_the_ring_and_batches_equal_the_sampler) {
  TestClient client(socket());
  client.attach(job_);
  EXPECT_EQ(client.answer().ring_name(), ring_name(job_, 0));
  EXPECT_EQ(client.answer().slot_count(), 3u);
  EXPECT_EQ(client.answer().patch_rows(), 128);
  EXPECT_EQ(client.answer().batch_capacity(), 2);
  EXPECT_EQ(client.answer().steps_per_epoch(), 3);
  EXPECT_EQ(client.answer().service_pid(), getpid());
  client.start(1, 0);
  // Across an epoch end: the stream continues into epoch 2 by itself.
  for (int epoch = 1; epoch <= 3; ++epoch) {
    for (int step = 0; step < 3; ++step) {
      const RingBatch got = client.read();
      ASSERT_EQ(got.epoch, epoch);
      ASSERT_EQ(got.step, step);
      expect_same_batch(got.batch, sampler_->batch(epoch, step),
                        "epoch " + std::to_string(epoch) + " step " + std::to_string(step));
    }
  }
}

TEST_F(DataServerTest, start_epoch_restarts_the_stream_where_asked) {
  TestClient client(socket());
  client.attach(job_);
  client.start(1, 0);
  EXPECT_EQ(client.read().step, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the ring fill up
  client.start(7, 2);                                          // a resume in mid-epoch
  RingBatch got = client.read();
  EXPECT_EQ(got.epoch, 7);
  EXPECT_EQ(got.step, 2);
  expect_same_batch(got.batch, sampler_->batch(7, 2), "epoch 7 step 2");
  got = client.read();
  EXPECT_EQ(got.epoch, 8);
  EXPECT_EQ(got.step, 0);
}

TEST_F(DataServerTest, ranks_get_their_own_rings_and_shares) {
  TestClient rank0(socket());
  TestClient rank1(socket());
  rank0.attach(job_, 0, 2);
  rank1.attach(job_, 1, 2);
  EXPECT_EQ(rank1.answer().ring_name(), ring_name(job_, 1));
  EXPECT_EQ(rank1.answer().steps_per_epoch(), 2);  // 6 films, 2 ranks x 2 patches a step
  rank0.start(1, 0);
  rank1.start(1, 0);
  for (int step = 0; step < 2; ++step) {
    expect_same_batch(rank0.read().batch, sampler_->batch(1, step, 0, 2), "rank 0");
    expect_same_batch(rank1.read().batch, sampler_->batch(1, step, 1, 2), "rank 1");
  }
}

TEST_F(DataServerTest, another_protocol_version_is_refused_with_a_clear_error) {
  TestClient client(socket());
  const hds::control::Reply reply = client.hello(job_, 0, 1, 99);
  ASSERT_TRUE(reply.has_error());
  EXPECT_NE(reply.error().find("protocol version 99 is not supported: this data service speaks "
                               "version " +
                               std::to_string(hds::control::PROTOCOL_VERSION)),
            std::string::npos)
      << reply.error();
  EXPECT_TRUE(client.closed_by_peer());
  EXPECT_FALSE(shm_exists(ring_name(job_, 0)));
}

TEST_F(DataServerTest, bad_hellos_are_refused_naming_the_problem) {
  EXPECT_NE(TestClient(socket()).hello("other-job", 0, 1).error().find("job id \"other-job\""),
            std::string::npos);
  EXPECT_NE(TestClient(socket()).hello(job_, 2, 2).error().find("rank 2 of world size 2"),
            std::string::npos);
  TestClient first(socket());
  first.attach(job_, 0, 2);
  EXPECT_NE(TestClient(socket()).hello(job_, 0, 2).error().find("rank 0 is already connected"),
            std::string::npos);
  EXPECT_NE(TestClient(socket()).hello(job_, 1, 3).error().find("world size 3 differs"),
            std::string::npos);
  TestClient not_hello(socket());
  hds::control::Request request;
  request.mutable_heartbeat();
  EXPECT_NE(not_hello.call(request).error().find("first message must be Hello"), std::string::npos);
}

TEST_F(DataServerTest, start_epoch_outside_the_epoch_is_refused) {
  TestClient client(socket());
  client.attach(job_);
  hds::control::Request request;
  request.mutable_start_epoch()->set_epoch(1);
  request.mutable_start_epoch()->set_first_step(3);
  EXPECT_NE(client.call(request).error().find("step in 0..2"), std::string::npos);
}

TEST_F(DataServerTest, socket_and_ring_are_owner_only) {
  TestClient client(socket());
  client.attach(job_);
  struct stat status {};
  ASSERT_EQ(lstat(socket().c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(fs::path(socket()).parent_path().c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(("/dev/shm" + ring_name(job_, 0)).c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0600u);
}

TEST_F(DataServerTest, a_rank_that_goes_away_has_its_ring_removed) {
  TestClient client(socket());
  client.attach(job_);
  client.start(1, 0);
  client.read();
  ASSERT_TRUE(shm_exists(ring_name(job_, 0)));
  client.detach();  // as when the trainer dies: its socket closes
  EXPECT_TRUE(eventually([&] { return !shm_exists(ring_name(job_, 0)); }, 5));
  // The rank may connect again.
  TestClient again(socket());
  again.attach(job_);
}

// `options` for a server of its own on `socket` and `job`, with a 1 s peer timeout.
ServeOptions own_server_options(ServeOptions options, const std::string& socket,
                                const std::string& job) {
  options.socket_path = socket;
  options.job_id = job;
  options.peer_timeout_seconds = 1;
  return options;
}

// A data server running on its own thread until the object goes.
class RunningServer {
 public:
  RunningServer(const PatchSampler& sampler, ServeOptions options)
      : options_(std::move(options)),
        server_(sampler, options_),
        thread_([this] { server_.run(); }) {}
  ~RunningServer() {
    server_.stop();
    thread_.join();
  }
  const ServeOptions& options() const { return options_; }

 private:
  ServeOptions options_;
  DataServer server_;
  std::thread thread_;
};

int threads_of_this_process() {
  int count = 0;
  for ([[maybe_unused]] const auto& task : std::filesystem::directory_iterator("/proc/self/task"))
    ++count;
  return count;
}

// A connection that said Hello as rank 0 and then neither attached to its ring nor left held
// rank 0 for 20 s. Its rank is freed within the attach timeout.
TEST_F(DataServerTest, a_trainer_that_never_attaches_frees_its_rank_within_the_timeout) {
  const RunningServer quick(
      *sampler_, own_server_options(options_, (dir_.path() / "quick" / "data.sock").string(),
                                    job_ + "-quick"));
  const std::string& socket = quick.options().socket_path;
  const std::string& job = quick.options().job_id;
  TestClient silent(socket);
  ASSERT_TRUE(silent.hello(job, 0, 1).error().empty());
  EXPECT_NE(TestClient(socket).hello(job, 0, 1).error().find("rank 0 is already connected"),
            std::string::npos);
  const auto asked = std::chrono::steady_clock::now();
  EXPECT_TRUE(eventually([&] { return TestClient(socket).hello(job, 0, 1).error().empty(); }, 10));
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count();
  EXPECT_LT(waited, 5) << "freed only after " << waited << " s (peer timeout 1 s)";
}

// 1,200 idle connections were 1,200 threads. Those waiting for Hello are capped; the others are
// closed at once, and a trainer gets through once the idle ones are gone.
TEST_F(DataServerTest, idle_connections_are_capped_and_hold_no_thread_beyond_the_cap) {
  const RunningServer quick(
      *sampler_,
      own_server_options(options_, (dir_.path() / "idle" / "data.sock").string(), job_ + "-idle"));
  const std::string& socket = quick.options().socket_path;
  const int before = threads_of_this_process();
  {
    std::vector<ControlChannel> idle;
    for (int i = 0; i < 3 * kMaxConnectionsWaitingForHello; ++i)
      idle.push_back(ControlChannel::connect(socket));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the server accepts them
    EXPECT_LE(threads_of_this_process(), before + kMaxConnectionsWaitingForHello + 2);
  }
  EXPECT_TRUE(eventually(
      [&] {
        try {
          return TestClient(socket).hello(quick.options().job_id, 0, 1).error().empty();
        } catch (const std::exception&) {
          return false;  // closed at once: still full
        }
      },
      10));
}

// 40 Hellos of --slots 1024 once filled /dev/shm until the OOM killer ended the service. The rings
// share a budget: a Hello beyond it is refused with what is in use and what to change, and a ring
// that goes gives its bytes back.
TEST_F(DataServerTest, rings_beyond_the_memory_budget_are_refused_and_freed_bytes_reused) {
  RingShape shape;
  shape.slot_count = options_.slot_count;
  shape.patch_rows = sampler_->options().patch_rows;
  shape.patch_cols = sampler_->options().patch_cols;
  shape.batch_capacity = sampler_->options().batch_size;
  ServeOptions budgeted = own_server_options(
      options_, (dir_.path() / "budget" / "data.sock").string(), job_ + "-budget");
  budgeted.ring_memory_bytes = 2 * ring_segment_bytes(shape) + 4096;  // two rings, not three
  const RunningServer server(*sampler_, budgeted);
  TestClient rank0(budgeted.socket_path);
  TestClient rank1(budgeted.socket_path);
  rank0.attach(budgeted.job_id, 0, 3);
  rank1.attach(budgeted.job_id, 1, 3);
  const std::string refusal = TestClient(budgeted.socket_path).hello(budgeted.job_id, 2, 3).error();
  EXPECT_NE(refusal.find("rank 2's ring needs"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("2 ring(s) hold"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("--ring-memory-mb"), std::string::npos) << refusal;
  EXPECT_FALSE(shm_exists(ring_name(budgeted.job_id, 2)));
  rank0.detach();
  // A refused connection is closed: each try is a new one.
  EXPECT_TRUE(eventually(
      [&] { return TestClient(budgeted.socket_path).hello(budgeted.job_id, 2, 3).error().empty(); },
      5));
}

TEST(RingBudget, by_default_half_of_the_smaller_of_shared_memory_and_available_memory) {
  EXPECT_EQ(default_ring_budget(10 << 20, 64 << 20), 5u << 20);
  EXPECT_EQ(default_ring_budget(64 << 20, 10 << 20), 5u << 20);
}

TEST_F(DataServerTest, shutdown_is_answered_once_the_ring_is_gone) {
  TestClient client(socket());
  client.attach(job_);
  client.start(1, 0);
  hds::control::Request request;
  request.mutable_shutdown();
  EXPECT_TRUE(client.call(request).has_shutdown());
  EXPECT_FALSE(shm_exists(ring_name(job_, 0)));  // a trainer killed right now leaves nothing
  EXPECT_TRUE(client.closed_by_peer());
}

TEST_F(DataServerTest, shutdown_with_stop_service_stops_the_server) {
  TestClient client(socket());
  client.attach(job_);
  hds::control::Request request;
  request.mutable_shutdown()->set_stop_service(true);
  EXPECT_TRUE(client.call(request).has_shutdown());
  thread_.join();  // run() returns by itself
  EXPECT_FALSE(shm_exists(ring_name(job_, 0)));
  thread_ = std::thread([] {});
}

// Connecting as another user needs root (to switch users); the directory and socket are opened
// up so that only the service's own uid check stands in the way.
TEST_F(DataServerTest, another_user_is_refused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to connect as another user";
  // The server thread creates the socket; under a loaded machine that can take a moment.
  for (int i = 0; i < 500 && !fs::exists(socket()); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(chmod(fs::path(socket()).parent_path().c_str(), 0755), 0);
  ASSERT_EQ(chmod(socket().c_str(), 0666), 0);
  int result[2];
  ASSERT_EQ(pipe(result), 0);
  hds::control::Request hello;
  hello.mutable_hello()->set_protocol_version(hds::control::PROTOCOL_VERSION);
  hello.mutable_hello()->set_job_id(job_);
  hello.mutable_hello()->set_world_size(1);
  std::string frame = hello.SerializeAsString();
  const uint32_t size = static_cast<uint32_t>(frame.size());
  frame.insert(0, std::string{static_cast<char>(size), 0, 0, 0});
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strcpy(address.sun_path, socket().c_str());
  const pid_t child = fork();
  if (child == 0) {  // system calls only: the parent has threads
    close(result[0]);
    if (setuid(65534) != 0) _exit(10);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) _exit(11);
    // The service refuses on the peer's uid as soon as it accepts, possibly before this Hello
    // is sent: writing to the closed connection must then not kill the child (SIGPIPE), and the
    // refusal is still there to read.
    if (send(fd, frame.data(), frame.size(), MSG_NOSIGNAL) < 0 && errno != EPIPE) _exit(12);
    char reply[4096];
    ssize_t total = 0;
    for (ssize_t n; (n = read(fd, reply + total, sizeof reply - total)) > 0;) total += n;
    if (write(result[1], reply, total) < 0) _exit(13);
    _exit(0);
  }
  close(result[1]);
  std::string bytes;
  char buffer[4096];
  for (ssize_t n; (n = read(result[0], buffer, sizeof buffer)) > 0;) bytes.append(buffer, n);
  close(result[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << WEXITSTATUS(status);
  ASSERT_GT(bytes.size(), 4u);
  hds::control::Reply reply;
  ASSERT_TRUE(reply.ParseFromString(bytes.substr(4)));
  EXPECT_NE(reply.error().find("connection from uid 65534"), std::string::npos) << reply.error();
  EXPECT_FALSE(shm_exists(ring_name(job_, 0)));
}

// --- metrics ----------------------------------------------------------------------------------

class MeteredDataServerTest : public DataServerTest {
 protected:
  bool metered() const override { return true; }
  std::vector<hds::test::Sample> scrape() const {
    const auto response = hds::test::http_get(metrics_port_, "/metrics");
    EXPECT_EQ(response.status, 200);
    return hds::test::parse_exposition(response.body);
  }
  double value(const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    return hds::test::value_of(scrape(), name, labels).value_or(-1);
  }
};

TEST_F(MeteredDataServerTest, count_batches_ring_occupancy_and_the_time_blocked_on_a_full_ring) {
  TestClient client(socket());
  client.attach(job_);
  EXPECT_EQ(value("hds_data_connected_trainers"), 1);
  EXPECT_EQ(value("hds_data_ring_slots", {{"rank", "0"}}), 3);
  client.start(1, 0);
  for (int i = 0; i < 4; ++i) client.read();
  // Not read on, the ring fills its 3 slots and the producers block: 4 read + 3 queued.
  EXPECT_TRUE(eventually(
      [&] {
        return value("hds_data_ring_occupied_slots", {{"rank", "0"}}) == 3;
      },
      10));
  EXPECT_EQ(value("hds_data_batches_total"), 7);
  EXPECT_EQ(value("hds_data_patches_total"), 14);  // full batches of 2
  EXPECT_EQ(value("hds_data_produce_seconds_count"), 7);
  // A producer blocked 0.3 s on the full ring records the wait once a slot frees.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  client.read();
  EXPECT_TRUE(
      eventually([&] { return value("hds_data_ring_full_wait_seconds_total") >= 0.25; }, 10))
      << value("hds_data_ring_full_wait_seconds_total");
  client.detach();
  EXPECT_TRUE(eventually([&] { return value("hds_data_connected_trainers") == 0; }, 10));
  EXPECT_EQ(value("hds_data_ring_slots", {{"rank", "0"}}), -1) << "the gone ring is still shown";
  EXPECT_EQ(value("hds_data_heartbeats_missed_total"), 0);
}

TEST_F(MeteredDataServerTest, a_trainer_whose_heartbeat_stops_counts_as_a_missed_heartbeat) {
  TestClient client(socket());
  client.attach(job_);
  client.start(1, 0);
  client.stop_heartbeat();
  // Peer timeout 1 s: the producers, blocked on the full ring, find the silence.
  EXPECT_TRUE(eventually([&] { return value("hds_data_heartbeats_missed_total") == 1; }, 10));
  EXPECT_TRUE(eventually([&] { return value("hds_data_connected_trainers") == 0; }, 10));
}

// --- the real binary ---------------------------------------------------------------------------

class ServeProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    job_ = unique_job("serve");
    socket_ = (dir_.path() / "run" / "data.sock").string();
    config_file_ = dir_.file("tiny.pbtxt");
    std::ofstream(config_file_) << "# the paper's config; the test overrides it to a tiny job\n";
    std::vector<std::string> arguments = {"serve",    "--config",     config_file_,
                                          "--socket", socket_,        "--job-id",
                                          job_,       "--ready-file", dir_.file("ready/%h")};
    for (const std::string& override_text : kTinyOverrides) {
      arguments.push_back("--set");
      arguments.push_back(override_text);
    }
    arguments.push_back("--set");
    arguments.push_back("data.service_timeout_seconds=2");
    service_ = std::make_unique<ChildProcess>(HDS_DATA_SERVICE_BINARY, arguments);
    ASSERT_TRUE(service_->wait_for_output("ready: socket " + socket_, 60)) << service_->output();
  }

  testing::TempDir dir_;
  std::string job_;
  std::string socket_;
  std::string config_file_;
  std::unique_ptr<ChildProcess> service_;
};

TEST_F(ServeProcess, batches_equal_the_sampler_in_this_process_and_sigterm_cleans_up) {
  const hds::config::Config config = tiny_config();
  const Dataset dataset = load_dataset(config.data());
  const PatchSampler sampler(dataset.train, sampler_options_for(config));
  {
    TestClient client(socket_);
    client.attach(job_);
    EXPECT_EQ(client.answer().service_pid(), service_->pid());
    client.start(1, 0);
    for (int i = 0; i < 12; ++i) {
      const RingBatch got = client.read();
      ASSERT_EQ(got.epoch, 1 + i / 3);
      ASSERT_EQ(got.step, i % 3);
      expect_same_batch(got.batch, sampler.batch(got.epoch, got.step),
                        "batch " + std::to_string(i));
    }
    service_->signal(SIGTERM);
    const auto status = service_->wait_exit(10);
    ASSERT_TRUE(status.has_value()) << service_->output();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << service_->output();
    // The service closed the ring before unlinking it: the reader hears "shut down".
    try {
      for (int i = 0; i < 10; ++i) client.read();  // what was queued may still be read
      ADD_FAILURE() << "reads continued after the service stopped";
    } catch (const RingPeerError& error) {
      EXPECT_NE(std::string(error.what()).find("shut down"), std::string::npos) << error.what();
    }
  }
  EXPECT_FALSE(shm_exists(ring_name(job_, 0)));
  EXPECT_FALSE(fs::exists(socket_));
  EXPECT_FALSE(fs::exists(fs::path(socket_).parent_path()));
}

TEST_F(ServeProcess, writes_its_ready_file_once_listening_and_removes_it_when_stopped) {
  // %h: one command line on every node of a job names a file per node.
  const std::string ready = dir_.file("ready/" + hds::common::short_host_name());
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(ready); }, 10));
  EXPECT_EQ(hds::test::read_text(ready),
            "socket " + socket_ + "\npid " + std::to_string(service_->pid()) + "\n");
  service_->signal(SIGTERM);
  ASSERT_TRUE(service_->wait_exit(20).has_value()) << service_->output();
  EXPECT_FALSE(std::filesystem::exists(ready)) << "a stopped service still says it is ready";
}

TEST_F(ServeProcess, kill_9_of_the_service_is_reported_to_the_reader_and_its_ring_removed) {
  TestClient client(socket_);
  client.attach(job_);
  client.start(1, 0);
  client.read();
  service_->kill_and_reap();
  const auto start = std::chrono::steady_clock::now();
  try {
    for (int i = 0; i < 10; ++i) client.read();  // the queued batches, then the error
    ADD_FAILURE() << "reads continued after the service was killed";
  } catch (const RingPeerError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("data service (pid " + std::to_string(service_->pid()) + ") exited"),
              std::string::npos)
        << message;
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 2);
  EXPECT_FALSE(shm_exists(ring_name(job_, 0)));
}

// The binary serves its metrics from the start: the dataset's cache use and skipped films, and
// an exposition promtool accepts.
TEST(ServeMetrics, report_cache_use_and_skipped_films_and_pass_promtool) {
  testing::TempDir dir;
  ChildProcess phantom(HDS_DATA_SERVICE_BINARY,
                       {"phantom", "--out", dir.file("films"), "--count", "12", "--seed", "3",
                        "--rows", "256", "--cols", "128"});
  ASSERT_TRUE(phantom.wait_exit(60).value_or(-1) == 0) << phantom.output();
  const int port = hds::test::free_ports(2);
  ASSERT_GT(port, 0);
  const std::string config = dir.file("job.pbtxt");
  std::ofstream(config) << "data { source: \"folder\" root: \"" << dir.file("films")
                        << "\" cache_dir: \"" << dir.file("cache")
                        << "\" image_rows: 256 image_cols: 128 patch_rows: 128 patch_cols: 128 }\n"
                        << "monitoring { metrics_port: " << port
                        << " data_service_port_offset: 1 }\n";
  const std::string url = "metrics: http://127.0.0.1:" + std::to_string(port + 1) + "/metrics";
  const int films = 12;
  // Serves until the samples are read; returns the exposition.
  auto serve_and_scrape = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> arguments = {
        "serve",    "--config",           config, "--socket", dir.file("run/data.sock"),
        "--job-id", unique_job("metrics")};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    ChildProcess service(HDS_DATA_SERVICE_BINARY, arguments);
    EXPECT_TRUE(service.wait_for_output("ready: socket", 60)) << service.output();
    EXPECT_NE(service.output().find(url), std::string::npos) << service.output();
    const auto response = hds::test::http_get(port + 1, "/metrics");
    service.signal(SIGTERM);
    EXPECT_TRUE(service.wait_exit(20).has_value());
    return response.body;
  };
  auto samples = hds::test::parse_exposition(serve_and_scrape({}));
  EXPECT_EQ(hds::test::value_of(samples, "hds_data_cache_misses_total"), films);
  EXPECT_EQ(hds::test::value_of(samples, "hds_data_cache_hits_total"), 0);
  EXPECT_EQ(hds::test::value_of(samples, "hds_data_films_skipped_total"), 0);
  EXPECT_EQ(hds::test::value_of(samples, "hds_data_connected_trainers"), 0);
  EXPECT_GT(hds::test::value_of(samples, "hds_process_cpu_seconds_total").value_or(0), 0);

  // One film broken, the others now cached: skipped under SKIP, the rest hits.
  const std::string train_list = hds::test::read_text(dir.file("films/split/train.txt"));
  const std::string broken = train_list.substr(0, train_list.find('\n'));
  hds::test::write_text(dir.file("films/img/" + broken + ".png"), "not a png");
  const std::string text = serve_and_scrape({"--set", "data.on_bad_sample=SKIP"});
  samples = hds::test::parse_exposition(text);
  EXPECT_EQ(hds::test::value_of(samples, "hds_data_films_skipped_total"), 1) << text;
  EXPECT_EQ(hds::test::value_of(samples, "hds_data_cache_hits_total"), films - 1) << text;
  // The changed file misses the cache (its bytes are in the key) before it fails to read.
  EXPECT_EQ(hds::test::value_of(samples, "hds_data_cache_misses_total"), 1) << text;

  const std::string promtool = hds::test::find_program("promtool");
  if (promtool.empty()) GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  hds::test::write_text(dir.file("metrics.txt"), text);
  const std::string command = promtool + " check metrics < " + dir.file("metrics.txt") + " 2>&1";
  std::FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string verdict;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe)) verdict += buffer;
  EXPECT_EQ(pclose(pipe), 0) << verdict << text;
  EXPECT_EQ(verdict, "") << text;
}

TEST(ServeCommand, without_socket_or_job_id_is_a_configuration_error) {
  testing::TempDir dir;
  const std::string config_file = dir.file("empty.pbtxt");
  std::ofstream(config_file) << "";
  ChildProcess service(HDS_DATA_SERVICE_BINARY, {"serve", "--config", config_file});
  const auto status = service.wait_exit(30);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << service.output();
  EXPECT_NE(service.output().find("needs --socket and --job-id"), std::string::npos)
      << service.output();
}

}  // namespace
}  // namespace hds::data
