// The data server: the accept loop, per-rank sessions and their producer threads.
#include "hds/data_server/data_server.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "hds/common/machine_memory.h"
#include "hds/common/signals.h"
#include "hds/transport/shm_ring.h"

namespace hds::data_server {

using hds::data::Dataset;
using hds::data::load_dataset;
using hds::data::PatchSampler;
using hds::data::sampler_options_for;
using hds::transport::PatchBatch;

using hds::control::Reply;
using hds::control::Request;
using hds::transport::ControlChannel;
using hds::transport::ControlError;
using hds::transport::HeartbeatThread;
using hds::transport::ring_name;
using hds::transport::RingProducer;
using hds::transport::RingShape;

// One trainer rank's connection: its Hello, its ring and the workers filling the ring. The
// session thread owns everything; workers only touch the ring and the publish order.
class RankSession {
 public:
  RankSession(DataServer& server, ControlChannel channel)
      : server_(server), channel_(std::move(channel)) {}
  ~RankSession() {
    abort();
    if (thread_.joinable()) thread_.join();
  }
  RankSession(const RankSession&) = delete;
  RankSession& operator=(const RankSession&) = delete;

  void start() {
    thread_ = std::thread([this] { serve(); });
  }
  // The ring's fill level now, if the session has a ring. Any thread.
  std::optional<RingOccupancy> occupancy() {
    std::lock_guard<std::mutex> lock(ring_mutex_);
    if (!ring_) return std::nullopt;
    const uint64_t produced = ring_->produced();
    // The trainer writes `consumed`: a bad value must not show as billions of batches.
    const uint64_t consumed = std::min(ring_->consumed(), produced);
    return RingOccupancy{rank_, ring_->shape().slot_count,
                         std::min<uint64_t>(produced - consumed, ring_->shape().slot_count)};
  }
  // Ends the session soon (from another thread): its blocking receive returns.
  void abort() { channel_.shutdown(); }
  bool finished() const { return finished_.load(); }
  // Not yet past Hello: connected, holding a thread, not yet a rank's.
  bool waiting_for_hello() const { return !greeted_.load() && !finished_.load(); }

 private:
  // Where a stream starts: ring sequence first_sequence holds (epoch, first_step).
  struct Stream {
    uint64_t first_sequence = 0;
    int epoch = 1;
    int first_step = 0;
  };

  void serve();
  bool say_hello();
  // What the session does after answering a request.
  enum class Next { serve, end_session, stop_service };
  Next handle(const Request& request, Reply& reply);
  void start_stream(int epoch, int first_step);
  void stop_stream();
  void remove_ring(std::string reason);
  void produce(int worker, Stream stream);
  // Ends the session for `why` (the first failure of its workers counts; `silent_peer`: the
  // trainer's heartbeat stopped, counted once per session).
  void fail(const std::string& why, bool silent_peer = false);
  std::string who() const { return "rank " + std::to_string(rank_); }

  DataServer& server_;
  ControlChannel channel_;
  std::thread thread_;
  std::atomic<bool> finished_{false};
  std::atomic<bool> greeted_{false};  // Hello answered (or refused)

  int rank_ = -1;
  int world_size_ = 0;
  int steps_per_epoch_ = 0;
  std::mutex ring_mutex_;  // guards creating and removing ring_ against occupancy()
  std::unique_ptr<RingProducer> ring_;
  uint64_t ring_bytes_ = 0;  // of the server's ring budget, held while ring_ exists
  std::unique_ptr<HeartbeatThread> heartbeat_;

  std::vector<std::thread> workers_;
  std::atomic<bool> stream_stop_{false};
  std::mutex publish_mutex_;  // batches are published in sequence order
  std::condition_variable published_;

  std::mutex failure_mutex_;
  std::string failure_;  // why a worker ended the session
};

void RankSession::serve() {
  std::string reason = "trainer closed the connection";
  try {
    if (say_hello()) {
      Request request;
      Next next = Next::serve;
      // Between requests the trainer is checked through its ring: one that never attaches, or
      // goes silent, frees its rank within the peer timeout even if its socket stays open.
      const double check_every = std::min(1.0, server_.options_.peer_timeout_seconds / 4);
      while (next == Next::serve) {
        if (!channel_.readable_within(check_every)) {
          try {
            ring_->check_peer();
          } catch (const hds::transport::RingPeerError& lost) {
            fail(lost.what(), lost.silent());  // as a worker finding it would
            break;
          }
          continue;
        }
        if (!channel_.receive(request)) break;
        Reply reply;
        next = handle(request, reply);
        // A Shutdown is answered once the ring is gone: the trainer may exit straight away.
        if (next != Next::serve) remove_ring("trainer said Shutdown");
        channel_.send(reply);
      }
      // Only once the reply is out: stopping the server aborts every session.
      if (next == Next::stop_service) server_.stop();
    } else {
      reason = "";
    }
  } catch (const std::exception& error) {
    reason = error.what();
  }
  if (ring_) {
    remove_ring(reason);
  } else if (!reason.empty() && rank_ < 0) {
    server_.log_line("connection ended before a ring was set up: " + reason);
  }
  channel_.shutdown();  // the peer sees the end now; the socket is closed when reaped
  finished_ = true;
}

// Stops the workers and removes the ring; the rank may then connect again.
void RankSession::remove_ring(std::string reason) {
  stop_stream();
  {
    std::lock_guard<std::mutex> lock(failure_mutex_);
    if (!failure_.empty()) reason = failure_;
  }
  const std::string name = ring_->name();
  heartbeat_.reset();
  {
    std::lock_guard<std::mutex> lock(ring_mutex_);
    ring_.reset();  // closes and unlinks
  }
  server_.release_ring_bytes(ring_bytes_);
  ring_bytes_ = 0;
  server_.log_line(who() + ": session ended (" + reason + "); ring " + name + " removed");
  server_.release_rank(rank_);
}

// Checks the peer and its Hello, creates the ring and answers. False when refused.
bool RankSession::say_hello() {
  auto refuse = [&](const std::string& why) {
    Reply reply;
    reply.set_error(why);
    channel_.send(reply);
    server_.log_line("refused a connection: " + why);
    return false;
  };
  if (channel_.peer_uid() != geteuid()) {
    return refuse("connection from uid " + std::to_string(channel_.peer_uid()) + " (pid " +
                  std::to_string(channel_.peer_pid()) + "): this data service serves uid " +
                  std::to_string(geteuid()) + " only");
  }
  Request request;
  const bool received = channel_.receive(request, server_.options_.peer_timeout_seconds);
  greeted_ = true;
  if (!received) return false;
  if (!request.has_hello()) return refuse("the first message must be Hello");
  const hds::control::Hello& hello = request.hello();
  if (const std::string refusal = server_.admit(hello, this); !refusal.empty()) {
    return refuse(refusal);
  }
  rank_ = hello.rank();
  world_size_ = hello.world_size();
  try {
    steps_per_epoch_ = server_.sampler_.steps_per_epoch(world_size_);
    RingShape shape;
    shape.slot_count = server_.options_.slot_count;
    shape.patch_rows = server_.sampler_.options().patch_rows;
    shape.patch_cols = server_.sampler_.options().patch_cols;
    shape.batch_capacity = server_.sampler_.options().batch_size;
    check_ring_shape(shape);
    if (const std::string refusal = server_.reserve_ring_bytes(ring_segment_bytes(shape), who());
        !refusal.empty()) {
      server_.release_rank(rank_);
      return refuse(refusal);
    }
    ring_bytes_ = ring_segment_bytes(shape);
    auto ring = std::make_unique<RingProducer>(ring_name(server_.options_.job_id, rank_), shape,
                                               server_.options_.peer_timeout_seconds);
    std::lock_guard<std::mutex> lock(ring_mutex_);
    ring_ = std::move(ring);
    heartbeat_ = std::make_unique<HeartbeatThread>(
        *ring_, HeartbeatThread::interval_for(server_.options_.peer_timeout_seconds));
  } catch (const std::exception& error) {
    {
      std::lock_guard<std::mutex> lock(ring_mutex_);
      ring_.reset();
    }
    server_.release_ring_bytes(ring_bytes_);
    ring_bytes_ = 0;
    server_.release_rank(rank_);
    return refuse(error.what());
  }

  Reply reply;
  hds::control::HelloReply& answer = *reply.mutable_hello();
  answer.set_protocol_version(hds::control::PROTOCOL_VERSION);
  answer.set_ring_name(ring_->name());
  answer.set_slot_count(ring_->shape().slot_count);
  answer.set_slot_bytes(ring_slot_bytes(ring_->shape()));
  answer.set_patch_rows(ring_->shape().patch_rows);
  answer.set_patch_cols(ring_->shape().patch_cols);
  answer.set_batch_capacity(ring_->shape().batch_capacity);
  answer.set_steps_per_epoch(steps_per_epoch_);
  answer.set_service_pid(getpid());
  answer.set_data_mean(server_.options().normalisation.mean);
  answer.set_data_std(server_.options().normalisation.std);
  channel_.send(reply);
  server_.log_line(who() + " of " + std::to_string(world_size_) + " (pid " +
                   std::to_string(channel_.peer_pid()) + ") connected: ring " + ring_->name() +
                   ", " + std::to_string(ring_->shape().slot_count) + " slots of " +
                   std::to_string(ring_slot_bytes(ring_->shape()) >> 10) + " KiB, " +
                   std::to_string(steps_per_epoch_) + " steps per epoch");
  return true;
}

RankSession::Next RankSession::handle(const Request& request, Reply& reply) {
  switch (request.body_case()) {
    case Request::kStartEpoch: {
      const int epoch = request.start_epoch().epoch();
      const int first_step = request.start_epoch().first_step();
      if (epoch < 1 || first_step < 0 || first_step >= steps_per_epoch_) {
        reply.set_error(
            "StartEpoch: epoch " + std::to_string(epoch) + " step " + std::to_string(first_step) +
            ": the epoch must be >= 1 and the step in 0.." + std::to_string(steps_per_epoch_ - 1));
        return Next::serve;
      }
      stop_stream();
      {
        std::lock_guard<std::mutex> lock(failure_mutex_);
        if (!failure_.empty()) throw std::runtime_error(failure_);
      }
      const uint64_t first_sequence = ring_->produced();
      start_stream(epoch, first_step);
      reply.mutable_start_epoch()->set_first_sequence(first_sequence);
      return Next::serve;
    }
    case Request::kHeartbeat:
      reply.mutable_heartbeat()->set_produced(ring_->produced());
      return Next::serve;
    case Request::kShutdown:
      reply.mutable_shutdown();
      return request.shutdown().stop_service() ? Next::stop_service : Next::end_session;
    case Request::kHello:
      reply.set_error("Hello: this connection already said Hello");
      return Next::serve;
    case Request::BODY_NOT_SET:
      break;
  }
  reply.set_error("unknown request");
  return Next::serve;
}

void RankSession::start_stream(int epoch, int first_step) {
  const Stream stream{ring_->produced(), epoch, first_step};
  for (int worker = 0; worker < server_.options_.workers_per_rank; ++worker) {
    workers_.emplace_back([this, worker, stream] { produce(worker, stream); });
  }
}

void RankSession::stop_stream() {
  {
    // Under the lock, so that a worker between its check and its wait cannot miss it.
    std::lock_guard<std::mutex> lock(publish_mutex_);
    stream_stop_ = true;
  }
  published_.notify_all();
  if (ring_) ring_->wake_waiters();
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
  stream_stop_ = false;
}

// Worker `worker` of N fills sequences first + worker, first + worker + N, ...: it samples its
// batch, waits for the slot, writes it, and publishes it after its predecessor.
void RankSession::produce(int worker, Stream stream) {
  const int workers = server_.options_.workers_per_rank;
  ServiceMetrics* metrics = server_.options_.metrics;
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  try {
    for (uint64_t sequence = stream.first_sequence + worker;; sequence += workers) {
      const uint64_t position = stream.first_step + (sequence - stream.first_sequence);
      const int epoch = stream.epoch + static_cast<int>(position / steps_per_epoch_);
      const int step = static_cast<int>(position % steps_per_epoch_);
      const auto sampling = Clock::now();
      const PatchBatch batch = server_.sampler_.batch(epoch, step, rank_, world_size_);
      const double produce_seconds = seconds_since(sampling);
      const auto waiting = Clock::now();
      const bool got_slot = ring_->wait_for_slot(sequence, stream_stop_);
      if (metrics) metrics->record_ring_full_wait(seconds_since(waiting));
      if (!got_slot) return;
      ring_->write(sequence, epoch, step, batch);
      std::unique_lock<std::mutex> lock(publish_mutex_);
      published_.wait(lock, [&] { return stream_stop_ || ring_->produced() == sequence; });
      if (stream_stop_) return;
      ring_->publish(sequence);
      lock.unlock();
      published_.notify_all();
      if (metrics) metrics->record_batch(batch.count, produce_seconds);
    }
  } catch (const hds::transport::RingPeerError& error) {
    fail(error.what(), error.silent());
  } catch (const std::exception& error) {
    fail(error.what());
  }
}

void RankSession::fail(const std::string& why, bool silent_peer) {
  {
    std::lock_guard<std::mutex> lock(failure_mutex_);
    if (failure_.empty()) {
      failure_ = why;
      // Every worker blocked on the ring finds the same silence: one miss.
      if (silent_peer && server_.options_.metrics)
        server_.options_.metrics->record_heartbeat_missed();
    }
  }
  {
    std::lock_guard<std::mutex> lock(publish_mutex_);
    stream_stop_ = true;
  }
  published_.notify_all();
  ring_->wake_waiters();
  channel_.shutdown();  // the session thread's receive returns, and it cleans up
}

// ---------------------------------------------------------------------------------------------
// DataServer.

uint64_t default_ring_budget(uint64_t shm_free_bytes, uint64_t available_memory_bytes) {
  return std::min(shm_free_bytes, available_memory_bytes) / 2;
}

DataServer::DataServer(const PatchSampler& sampler, ServeOptions options)
    : sampler_(sampler),
      options_(std::move(options)),
      listener_(options_.socket_path),
      ring_budget_(options_.ring_memory_bytes > 0
                       ? options_.ring_memory_bytes
                       : default_ring_budget(hds::common::free_bytes_at("/dev/shm"),
                                             hds::common::available_memory_bytes())) {
  ring_name(options_.job_id, 0);  // validates the job id now rather than at the first Hello
  if (options_.workers_per_rank < 1) throw ControlError("workers per rank must be at least 1");
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw ControlError(std::string("eventfd: ") + std::strerror(errno));
  if (options_.metrics) {
    options_.metrics->set_ring_occupancy_source([this] { return ring_occupancy(); });
  }
}

DataServer::~DataServer() {
  // Before anything goes: a scrape in progress finishes first.
  if (options_.metrics) options_.metrics->set_ring_occupancy_source(nullptr);
  for (auto& session : sessions_) session->abort();
  sessions_.clear();  // joins each session, which removes its ring
  ::close(wake_fd_);
}

void DataServer::stop() {
  stopping_ = true;
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = ::write(wake_fd_, &one, sizeof one);
}

void DataServer::run() {
  while (!stopping_) {
    pollfd watched[2] = {{listener_.fd(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    // The timeout only paces the reaping of finished sessions.
    const int ready = poll(watched, 2, 1000);
    if (ready < 0 && errno != EINTR) {
      throw ControlError(std::string("poll: ") + std::strerror(errno));
    }
    if (ready > 0 && (watched[0].revents & POLLIN) && !stopping_) {
      try {
        ControlChannel channel = listener_.accept();
        if (connections_waiting_for_hello() >= kMaxConnectionsWaitingForHello) {
          // Each session is a thread: idle connections must not pile up. They leave within
          // the peer timeout; this one is closed at once.
          log_line("refused a connection: " + std::to_string(kMaxConnectionsWaitingForHello) +
                   " others are waiting to say Hello");
          continue;
        }
        auto session = std::make_unique<RankSession>(*this, std::move(channel));
        session->start();
        std::lock_guard<std::mutex> lock(mutex_);
        sessions_.push_back(std::move(session));
      } catch (const ControlError& error) {
        // E.g. out of descriptors: the ranks already served go on; pause rather than spin.
        log_line(error.what());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    reap_finished_sessions();
  }
  std::list<std::unique_ptr<RankSession>> ending;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ending.swap(sessions_);
  }
  for (auto& session : ending) session->abort();
  ending.clear();  // joins
}

int DataServer::connections_waiting_for_hello() {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(std::count_if(
      sessions_.begin(), sessions_.end(),
      [](const std::unique_ptr<RankSession>& session) { return session->waiting_for_hello(); }));
}

void DataServer::reap_finished_sessions() {
  std::list<std::unique_ptr<RankSession>> finished;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if ((*it)->finished()) {
        finished.splice(finished.end(), sessions_, it++);
      } else {
        ++it;
      }
    }
  }
  finished.clear();  // joins, outside the lock
}

std::string DataServer::admit(const hds::control::Hello& hello, RankSession* session) {
  // The version first: another version's other fields may mean something else.
  if (hello.protocol_version() != hds::control::PROTOCOL_VERSION) {
    return "protocol version " + std::to_string(hello.protocol_version()) +
           " is not supported: this data service speaks version " +
           std::to_string(hds::control::PROTOCOL_VERSION) +
           " (build the trainer and the data service from the same tree)";
  }
  if (hello.job_id() != options_.job_id) {
    return "job id \"" + hello.job_id() + "\" does not match this data service's \"" +
           options_.job_id + "\"";
  }
  constexpr int kMaxWorldSize = 1 << 16;
  if (hello.world_size() < 1 || hello.world_size() > kMaxWorldSize || hello.rank() < 0 ||
      hello.rank() >= hello.world_size()) {
    return "rank " + std::to_string(hello.rank()) + " of world size " +
           std::to_string(hello.world_size()) +
           ": need 0 <= rank < world size <= " + std::to_string(kMaxWorldSize);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (world_size_ != 0 && hello.world_size() != world_size_) {
    return "world size " + std::to_string(hello.world_size()) + " differs from the " +
           std::to_string(world_size_) + " of the ranks already connected";
  }
  world_size_ = hello.world_size();
  session_of_rank_.resize(world_size_, nullptr);
  if (session_of_rank_[hello.rank()] != nullptr) {
    return "rank " + std::to_string(hello.rank()) + " is already connected";
  }
  session_of_rank_[hello.rank()] = session;
  record_connected_trainers();
  return "";
}

std::string DataServer::reserve_ring_bytes(uint64_t bytes, const std::string& who) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (ring_bytes_reserved_ + bytes <= ring_budget_) {
    ring_bytes_reserved_ += bytes;
    ++rings_reserved_;
    return "";
  }
  const auto mib = [](uint64_t b) { return std::to_string(b >> 20) + " MiB"; };
  return who + "'s ring needs " + mib(bytes) + ", but this data service's rings may take " +
         mib(ring_budget_) + " in all and " + std::to_string(rings_reserved_) + " ring(s) hold " +
         mib(ring_bytes_reserved_) +
         ": use fewer --slots, a smaller batch or patch, or a larger --ring-memory-mb";
}

void DataServer::release_ring_bytes(uint64_t bytes) {
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  ring_bytes_reserved_ -= std::min(bytes, ring_bytes_reserved_);
  --rings_reserved_;
}

void DataServer::release_rank(int rank) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (rank >= 0 && rank < static_cast<int>(session_of_rank_.size())) {
    session_of_rank_[rank] = nullptr;
  }
  // With no rank left, the next job step may use another world size.
  bool any = false;
  for (RankSession* session : session_of_rank_) any = any || session != nullptr;
  if (!any) {
    world_size_ = 0;
    session_of_rank_.clear();
  }
  record_connected_trainers();
}

void DataServer::record_connected_trainers() {
  if (!options_.metrics) return;
  const auto connected = std::count_if(session_of_rank_.begin(), session_of_rank_.end(),
                                       [](const RankSession* session) { return session; });
  options_.metrics->set_connected_trainers(static_cast<int>(connected));
}

std::vector<RingOccupancy> DataServer::ring_occupancy() {
  std::vector<RingOccupancy> rings;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& session : sessions_) {
    if (const auto ring = session->occupancy()) rings.push_back(*ring);
  }
  return rings;
}

void DataServer::log_line(const std::string& line) {
  std::lock_guard<std::mutex> lock(log_mutex_);
  std::ostream& out = options_.log != nullptr ? *options_.log : std::cerr;
  out << "hds-data-service: " << line << std::endl;
}

// ---------------------------------------------------------------------------------------------
// serve().

namespace {

// The server serve() runs, for the signal hook (which may read nothing but atomics).
std::atomic<DataServer*> signalled_server{nullptr};

extern "C" void stop_signalled_server(int) {
  if (DataServer* server = signalled_server.load()) server->stop();
}

}  // namespace

void serve(const hds::config::Config& config, const ServeOptions& options,
           const std::function<void()>& on_ready) {
  const Dataset dataset = load_dataset(config.data());
  if (options.metrics) {
    options.metrics->record_dataset(dataset.cache_hits, dataset.cache_misses,
                                    dataset.report.skipped_films);
  }
  const PatchSampler sampler(dataset.train, sampler_options_for(config));
  ServeOptions serving = options;
  serving.normalisation = {dataset.mean, dataset.std};
  DataServer server(sampler, serving);
  server.log_line("rings: at most " + std::to_string(server.ring_budget() >> 20) +
                  " MiB in all (--ring-memory-mb" +
                  (options.ring_memory_bytes > 0
                       ? ")"
                       : ": half of /dev/shm's free space or of the available memory)"));
  // SIGTERM and SIGINT stop the server: its run() returns and cleans up.
  signalled_server = &server;
  const hds::common::CaughtSignals stop_signals({SIGTERM, SIGINT}, stop_signalled_server);
  if (on_ready) on_ready();
  server.run();
}

}  // namespace hds::data_server
