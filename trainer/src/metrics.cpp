#include "hds/trainer/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>

#include "hds/config/config.h"
#include "hds/monitoring/metrics_endpoint.h"

namespace hds::trainer {

namespace {

namespace pm = prometheus;

constexpr std::array<const char*, 2> kTerms = {"seg", "cls"};

// Families with the rank's labels on every series.
template <class Builder>
auto& family(Builder builder, pm::Registry& registry, const pm::Labels& labels,
             const std::string& name, const std::string& help) {
  return builder.Name(name).Help(help).Labels(labels).Register(registry);
}

}  // namespace

struct TrainerMetrics::State {
  explicit State(const RankIdentity& identity)
      : is_root(identity.rank == 0),
        labels(hds::monitoring::rank_labels(identity.rank, identity.local_rank)),
        registry(std::make_shared<pm::Registry>()) {}

  bool is_root;
  pm::Labels labels;
  std::shared_ptr<pm::Registry> registry;
  // Started last and destroyed first: no scrape sees a half-built or destroyed registry.
  std::unique_ptr<hds::monitoring::MetricsEndpoint> endpoint;

  pm::Counter* steps = nullptr;
  pm::Counter* patches = nullptr;
  pm::Gauge* global_step = nullptr;
  pm::Gauge* epoch = nullptr;
  pm::Gauge* last_step_time = nullptr;
  pm::Gauge* weighted_loss = nullptr;
  pm::Gauge* learning_rate = nullptr;
  pm::Gauge* gradient_norm = nullptr;
  pm::Gauge* patches_per_second = nullptr;
  pm::Histogram* step_seconds = nullptr;
  pm::Histogram* data_wait_seconds = nullptr;
  pm::Histogram* sync_seconds = nullptr;
  pm::Family<pm::Gauge>* loss = nullptr;         // {head, term}
  pm::Family<pm::Gauge>* head_weight = nullptr;  // {head, term}

  pm::Gauge* device_allocated = nullptr;  // CUDA ranks only, made at the first report
  pm::Gauge* device_reserved = nullptr;
  double linger_seconds = 0;

  pm::Gauge* validation_epoch = nullptr;  // rank 0 only, like the rest of this block
  pm::Gauge* validation_best_dice = nullptr;
  pm::Gauge* validation_dice = nullptr;
  pm::Gauge* validation_accuracy = nullptr;
  pm::Gauge* validation_auc = nullptr;
  pm::Histogram* checkpoint_seconds = nullptr;
};

TrainerMetrics::TrainerMetrics(const hds::config::MonitoringConfig& monitoring,
                               const RankIdentity& identity)
    : state_(std::make_unique<State>(identity)) {
  State& s = *state_;
  using hds::monitoring::MetricsError;
  const int port = hds::config::metrics_port(monitoring, identity.local_rank);
  if (monitoring.metrics_port() <= 0) {
    throw MetricsError("metrics: monitoring.metrics_port is " +
                       std::to_string(monitoring.metrics_port()) + ": no port to serve on");
  }
  if (port > 65535) {
    throw MetricsError("metrics: local rank " + std::to_string(identity.local_rank) +
                       " would serve on port " + std::to_string(port) +
                       ", above 65535: lower monitoring.metrics_port (" +
                       std::to_string(monitoring.metrics_port()) + " + local rank)");
  }

  pm::Registry& registry = *s.registry;
  const pm::Labels& labels = s.labels;
  auto counter = [&](const std::string& name, const std::string& help) -> pm::Counter* {
    return &family(pm::BuildCounter(), registry, labels, name, help).Add({});
  };
  auto gauges = [&](const std::string& name, const std::string& help) -> pm::Family<pm::Gauge>* {
    return &family(pm::BuildGauge(), registry, labels, name, help);
  };
  auto gauge = [&](const std::string& name, const std::string& help) -> pm::Gauge* {
    return &gauges(name, help)->Add({});
  };
  auto histogram = [&](const std::string& name, const std::string& help,
                       const std::vector<double>& buckets) -> pm::Histogram* {
    return &family(pm::BuildHistogram(), registry, labels, name, help).Add({}, buckets);
  };
  s.steps = counter("hds_train_steps_total", "Training steps this rank has done since it started");
  s.patches =
      counter("hds_train_patches_total", "Patches this rank has trained on since it started");
  s.global_step =
      gauge("hds_train_global_step", "Global step of the job (all epochs, continued on resume)");
  s.epoch = gauge("hds_train_epoch", "1-based epoch of the last training step");
  s.last_step_time = gauge("hds_train_last_step_timestamp_seconds",
                           "Unix time at which this rank's last training step ended (before the "
                           "first step: when the rank started)");
  s.last_step_time->SetToCurrentTime();  // a rank stuck before its first step looks stalled
  s.weighted_loss =
      gauge("hds_train_weighted_loss", "Total weighted loss of the last step (the one minimised)");
  s.loss =
      gauges("hds_train_loss",
             "Unweighted loss of one head in the last step: term seg (cross-entropy, plus the Dice "
             "term when loss.segmentation adds it) or cls "
             "(MIL); 0 where the loss variant turns the term off");
  s.head_weight = gauges("hds_train_head_weight", "Weight of one head's loss term in this epoch");
  s.learning_rate = gauge("hds_train_learning_rate", "Learning rate of this epoch");
  s.gradient_norm = gauge("hds_train_gradient_norm",
                          "L2 norm of the gradient applied in the last step (averaged over ranks)");
  s.patches_per_second =
      gauge("hds_train_patches_per_second", "This rank's patches per second over its last step");
  s.step_seconds =
      histogram("hds_train_step_seconds", "Wall time of a training step, waiting for data included",
                hds::monitoring::step_seconds_buckets());
  s.data_wait_seconds = histogram("hds_train_data_wait_seconds",
                                  "Time a step waited for its batch (sampler or data service ring)",
                                  hds::monitoring::step_seconds_buckets());
  s.sync_seconds = histogram("hds_train_gradient_sync_seconds",
                             "Time a step waited for the gradient sync after backward",
                             hds::monitoring::step_seconds_buckets());
  gauge("hds_train_world_size", "Ranks of the data-parallel job")->Set(identity.world_size);
  if (s.is_root) {
    s.validation_epoch = gauge("hds_validation_epoch", "Epoch of the last validation");
    s.validation_dice = gauge("hds_validation_dice", "Mean Dice of the last validation");
    s.validation_accuracy =
        gauge("hds_validation_accuracy", "Whole-image accuracy of the last validation");
    s.validation_auc = gauge("hds_validation_auc", "Whole-image ROC AUC of the last validation");
    s.validation_best_dice =
        gauge("hds_validation_best_dice", "Best mean Dice of the run's validations so far");
    s.checkpoint_seconds = histogram("hds_checkpoint_seconds", "Time to write a checkpoint",
                                     hds::monitoring::slow_operation_seconds_buckets());
  }

  s.linger_seconds = monitoring.linger_seconds();
  s.endpoint = std::make_unique<hds::monitoring::MetricsEndpoint>(
      monitoring.metrics_address(), port, s.registry, s.labels,
      "choose another with monitoring.metrics_port (local rank r uses metrics_port + r) or 0 to "
      "turn metrics off");
}

TrainerMetrics::~TrainerMetrics() {
  if (state_->linger_seconds > 0) state_->endpoint->wait_for_next_scrape(state_->linger_seconds);
}

const std::string& TrainerMetrics::url() const { return state_->endpoint->url(); }

void TrainerMetrics::on_step(const StepReport& report) {
  State& s = *state_;
  s.steps->Increment();
  s.patches->Increment(report.patches);
  s.global_step->Set(static_cast<double>(report.global_step));
  s.epoch->Set(report.epoch);
  s.last_step_time->SetToCurrentTime();
  s.learning_rate->Set(report.learning_rate);
  s.gradient_norm->Set(report.gradient_norm);
  s.step_seconds->Observe(report.seconds);
  s.data_wait_seconds->Observe(report.data_wait_seconds);
  s.sync_seconds->Observe(report.sync_wait_seconds);
  if (report.seconds > 0) s.patches_per_second->Set(report.patches / report.seconds);
  if (report.device_allocated_bytes >= 0) {
    if (s.device_allocated == nullptr) {
      s.device_allocated = &family(pm::BuildGauge(), *s.registry, s.labels,
                                   "hds_train_device_memory_allocated_bytes",
                                   "GPU memory held by this rank's tensors (CUDA allocator)")
                                .Add({});
      s.device_reserved =
          &family(pm::BuildGauge(), *s.registry, s.labels, "hds_train_device_memory_reserved_bytes",
                  "GPU memory this rank's CUDA allocator has reserved (held by "
                  "tensors or cached)")
               .Add({});
    }
    s.device_allocated->Set(static_cast<double>(report.device_allocated_bytes));
    s.device_reserved->Set(static_cast<double>(report.device_reserved_bytes));
  }
  // A rank that got no patches in the last step of an epoch has no losses to report.
  if (report.heads.empty()) return;
  s.weighted_loss->Set(report.loss);
  const std::array<const std::vector<double>*, 2> losses = {&report.seg, &report.cls};
  const std::array<const std::vector<double>*, 2> weights = {&report.seg_weights,
                                                             &report.cls_weights};
  for (size_t i = 0; i < report.heads.size(); ++i) {
    const int head = report.heads[i];
    for (size_t term = 0; term < kTerms.size(); ++term) {
      const pm::Labels labels{{"head", std::to_string(head)}, {"term", kTerms[term]}};
      if (i < losses[term]->size()) s.loss->Add(labels).Set((*losses[term])[i]);
      if (head >= 0 && static_cast<size_t>(head) < weights[term]->size()) {
        s.head_weight->Add(labels).Set((*weights[term])[head]);
      }
    }
  }
}

void TrainerMetrics::on_nonfinite_loss(double weighted_loss) {
  state_->weighted_loss->Set(weighted_loss);
}

void TrainerMetrics::on_validation(const hds::checkpoint::ValidationResult& validation,
                                   const hds::checkpoint::ValidationResult& best_dice) {
  State& s = *state_;
  if (!s.is_root) return;
  s.validation_best_dice->Set(best_dice.dice());
  s.validation_epoch->Set(validation.epoch());
  s.validation_dice->Set(validation.dice());
  s.validation_accuracy->Set(validation.accuracy());
  s.validation_auc->Set(validation.auc());
}

void TrainerMetrics::on_checkpoint(double seconds) {
  State& s = *state_;
  if (s.is_root) s.checkpoint_seconds->Observe(seconds);
}

}  // namespace hds::trainer
