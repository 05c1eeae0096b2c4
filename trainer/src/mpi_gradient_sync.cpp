// The MPI backend of GradientSync (CPU tensors): buckets summed by MPI on a communication
// thread while backward goes on.
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gradient_sync_backends.h"

namespace hds::trainer {

namespace {

// Sums buckets with MPI on a thread of its own, so that backward goes on meanwhile. Buckets are
// summed in the order they were started.
class MpiGradientSync final : public BucketedGradientSync {
 public:
  MpiGradientSync(const World& world, std::vector<torch::Tensor> parameters, int64_t bucket_bytes)
      : BucketedGradientSync(world, std::move(parameters), bucket_bytes, torch::kCPU) {
    for (int b = 0; b < bucket_count(); ++b) {
      labels_.push_back("bucket " + std::to_string(b + 1) + "/" + std::to_string(bucket_count()) +
                        " all-reduce");
    }
    thread_ = std::thread([this] { run(); });
  }

  ~MpiGradientSync() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  void broadcast_from_root(const std::vector<torch::Tensor>& tensors) override {
    wait_for_sums();
    for (const torch::Tensor& tensor : tensors) {
      // A dense tensor's bytes are its storage span, laid out alike on every rank.
      if (!tensor.is_non_overlapping_and_dense() || !tensor.device().is_cpu()) {
        throw WorldError("gradient sync: broadcast needs dense CPU tensors");
      }
      world_.broadcast_bytes(tensor.data_ptr(), tensor.nbytes(), "initial weights broadcast");
    }
  }

  std::string backend_name() const override { return "mpi"; }

 protected:
  void start_sum(Bucket& bucket) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(&bucket);
    }
    wake_.notify_all();
  }

  void wait_for_sums() override {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return queue_.empty() && !busy_; });
    if (failure_) {
      std::exception_ptr failure = failure_;
      failure_ = nullptr;
      std::rethrow_exception(failure);
    }
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;  // closing
      Bucket* bucket = queue_.front();
      queue_.pop_front();
      busy_ = true;
      // After a failure the remaining buckets are skipped; wait_for_sums reports the failure.
      const bool skip = failure_ != nullptr;
      lock.unlock();
      std::exception_ptr failure;
      try {
        if (!skip) {
          const auto index = static_cast<size_t>(bucket - buckets_.data());
          world_.sum_floats(bucket->flat.data_ptr<float>(),
                            static_cast<size_t>(bucket->flat.numel()), labels_[index].c_str());
        }
      } catch (...) {
        failure = std::current_exception();
      }
      lock.lock();
      if (failure) failure_ = failure;
      busy_ = false;
      if (queue_.empty()) done_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::deque<Bucket*> queue_;
  bool busy_ = false;
  bool closing_ = false;
  std::exception_ptr failure_;
  std::vector<std::string> labels_;  // each bucket's name in the watchdog's reports
  std::thread thread_;
};

}  // namespace

std::unique_ptr<GradientSync> make_mpi_gradient_sync(const World& world,
                                                     std::vector<torch::Tensor> parameters,
                                                     int64_t bucket_bytes) {
  return std::make_unique<MpiGradientSync>(world, std::move(parameters), bucket_bytes);
}

}  // namespace hds::trainer
