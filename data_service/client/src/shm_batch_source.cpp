#include "hds/data_client/shm_batch_source.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace hds::data_client {

using hds::transport::ControlChannel;
using hds::transport::ControlError;

namespace {

// Throws when `reply` carries an error or lacks the body a request of `what` expects.
void check_reply(const hds::control::Reply& reply, bool has_body, const std::string& what,
                 const std::string& socket_path) {
  if (reply.has_error()) {
    throw ControlError("data service at " + socket_path + " refused " + what + ": " +
                       reply.error());
  }
  if (!has_body) {
    throw ControlError("data service at " + socket_path + " answered " + what +
                       " with an unexpected reply");
  }
}

void expect_equal(int served, int configured, const std::string& what) {
  if (configured != 0 && served != configured) {
    throw std::runtime_error("the data service serves " + what + " " + std::to_string(served) +
                             " but this trainer's configuration says " +
                             std::to_string(configured) +
                             ": start both with the same configuration");
  }
}

// Connects once the service listens: a launcher may start the trainers and the service together
// (Slurm steps on many nodes), so a missing socket is waited for up to `timeout_seconds`.
ControlChannel connect_when_listening(const std::string& socket_path, double timeout_seconds) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(timeout_seconds));
  for (;;) {
    try {
      return ControlChannel::connect(socket_path);
    } catch (const ControlError& e) {
      if (std::chrono::steady_clock::now() >= deadline) {
        std::ostringstream message;
        message << e.what() << "; waited " << timeout_seconds
                << " s (data.service_timeout_seconds)";
        throw ControlError(message.str());
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

ShmBatchSource::ShmBatchSource(const ShmBatchSourceOptions& options) : options_(options) {
  connect(options.timeout_seconds);
}

void ShmBatchSource::connect(double wait_seconds) {
  heartbeat_.reset();
  ring_.reset();
  channel_.reset();
  next_epoch_ = 0;  // a new service has no stream yet
  next_step_ = 0;
  channel_.emplace(connect_when_listening(options_.socket_path, wait_seconds));
  hds::control::Request request;
  hds::control::Hello& hello = *request.mutable_hello();
  hello.set_protocol_version(hds::control::PROTOCOL_VERSION);
  hello.set_rank(options_.rank);
  hello.set_world_size(options_.world_size);
  hello.set_job_id(options_.job_id);
  const hds::control::Reply reply = channel_->call(request, options_.timeout_seconds);
  check_reply(reply, reply.has_hello(), "Hello", options_.socket_path);
  const hds::control::HelloReply& answer = reply.hello();

  expect_equal(answer.patch_rows(), options_.patch_rows, "patch rows (data.patch_rows)");
  expect_equal(answer.patch_cols(), options_.patch_cols, "patch columns (data.patch_cols)");
  expect_equal(answer.batch_capacity(), options_.batch_size, "batches of size (train.batch_size)");
  if (answer.steps_per_epoch() < 1) {
    throw ControlError("data service at " + options_.socket_path + " announced " +
                       std::to_string(answer.steps_per_epoch()) + " steps per epoch");
  }
  steps_per_epoch_ = answer.steps_per_epoch();
  check_normalisation(answer);

  hds::transport::RingShape announced;
  announced.slot_count = answer.slot_count();
  announced.patch_rows = answer.patch_rows();
  announced.patch_cols = answer.patch_cols();
  announced.batch_capacity = answer.batch_capacity();
  // The name comes from the service; refuse anything but the name this job and rank must have.
  const std::string expected_name = hds::transport::ring_name(options_.job_id, options_.rank);
  if (answer.ring_name() != expected_name) {
    throw ControlError("data service at " + options_.socket_path + " offered ring \"" +
                       answer.ring_name() + "\", expected " + expected_name);
  }
  ring_ = std::make_unique<hds::transport::RingConsumer>(expected_name, options_.timeout_seconds,
                                                         &announced);
  heartbeat_ = std::make_unique<hds::transport::HeartbeatThread>(
      *ring_, hds::transport::HeartbeatThread::interval_for(options_.timeout_seconds));
}

void ShmBatchSource::check_normalisation(const hds::control::HelloReply& answer) {
  if (!(answer.data_std() > 0) || !std::isfinite(answer.data_std()) ||
      !std::isfinite(answer.data_mean())) {
    throw ControlError(
        "data service at " + options_.socket_path + " announced no usable normalisation (mean " +
        std::to_string(answer.data_mean()) + ", std " + std::to_string(answer.data_std()) + ")");
  }
  const Normalisation announced{answer.data_mean(), answer.data_std()};
  // A service restarted in place must normalise as the first did, or the weights learn from two
  // scales.
  if (normalisation_ &&
      (announced.mean != normalisation_->mean || announced.std != normalisation_->std)) {
    std::ostringstream message;
    message << "data service at " << options_.socket_path << " normalises with mean "
            << announced.mean << " std " << announced.std << ", the one before it with mean "
            << normalisation_->mean << " std " << normalisation_->std
            << ": not the same dataset or configuration";
    throw ControlError(message.str());
  }
  normalisation_ = announced;
}

ShmBatchSource::~ShmBatchSource() {
  heartbeat_.reset();
  if (!channel_) return;
  try {
    hds::control::Request request;
    request.mutable_shutdown();
    channel_->call(request, 1.0);
  } catch (const std::exception&) {
    // The service may be gone already; closing the socket ends the session as well.
  }
}

void ShmBatchSource::start_stream(int epoch, int step) {
  hds::control::Request request;
  request.mutable_start_epoch()->set_epoch(epoch);
  request.mutable_start_epoch()->set_first_step(step);
  const hds::control::Reply reply = channel_->call(request, options_.timeout_seconds);
  check_reply(reply, reply.has_start_epoch(),
              "StartEpoch (epoch " + std::to_string(epoch) + ", step " + std::to_string(step) + ")",
              options_.socket_path);
  ring_->seek(reply.start_epoch().first_sequence());
  next_epoch_ = epoch;
  next_step_ = step;
}

hds::transport::PatchBatch ShmBatchSource::batch(int epoch, int step) {
  for (;;) {
    try {
      return next_batch(epoch, step);
    } catch (const hds::transport::RingPeerError& lost) {
      if (options_.reconnect_seconds <= 0) throw;
      reconnect(lost.what());
    } catch (const ControlError& lost) {
      if (options_.reconnect_seconds <= 0) throw;
      reconnect(lost.what());
    }
  }
}

void ShmBatchSource::reconnect(const std::string& loss) {
  std::ostringstream waiting;
  waiting << loss << ": waiting up to " << options_.reconnect_seconds
          << " s (data.service_reconnect_seconds) for a new data service at "
          << options_.socket_path;
  if (options_.on_service_lost) options_.on_service_lost(waiting.str());
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(options_.reconnect_seconds));
  for (;;) {
    const double left =
        std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
    try {
      connect(std::max(left, 0.1));
      if (options_.on_reconnected) {
        options_.on_reconnected("reconnected to the data service at " + options_.socket_path);
      }
      return;
    } catch (const std::runtime_error& again) {  // ControlError, RingError: not back yet
      if (std::chrono::steady_clock::now() >= deadline) {
        std::ostringstream failure;
        failure << loss << "; no data service came back at " << options_.socket_path << " within "
                << options_.reconnect_seconds
                << " s (data.service_reconnect_seconds): " << again.what();
        throw hds::transport::RingPeerError(failure.str());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

hds::transport::PatchBatch ShmBatchSource::next_batch(int epoch, int step) {
  if (epoch != next_epoch_ || step != next_step_) start_stream(epoch, step);
  hds::transport::RingBatch got = ring_->read();
  if (got.epoch != epoch || got.step != step) {
    throw hds::transport::RingError(
        "ring " + ring_->name() + ": the data service sent epoch " + std::to_string(got.epoch) +
        " step " + std::to_string(got.step) + " where epoch " + std::to_string(epoch) + " step " +
        std::to_string(step) + " was due (out of order)");
  }
  next_step_ = step + 1;
  next_epoch_ = epoch;
  if (next_step_ == steps_per_epoch_) {
    next_step_ = 0;
    ++next_epoch_;
  }
  return std::move(got.batch);
}

}  // namespace hds::data_client
