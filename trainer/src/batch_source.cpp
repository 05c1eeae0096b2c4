#include "hds/trainer/batch_source.h"

#include "hds/data_client/shm_batch_source.h"

namespace hds::trainer {

std::unique_ptr<BatchSource> make_batch_source(
    const hds::config::Config& config, const std::vector<hds::data::Film>& train_films,
    const hds::data::SamplerOptions& options, int rank, int world_size,
    std::function<void(const std::string&)> on_service_lost,
    std::function<void(const std::string&)> on_reconnected) {
  if (config.data().service_socket().empty()) {
    return std::make_unique<InProcessBatchSource>(train_films, options, rank, world_size);
  }
  hds::data_client::ShmBatchSourceOptions service;
  service.socket_path = config.data().service_socket();
  service.job_id = config.data().service_job_id();
  service.rank = rank;
  service.world_size = world_size;
  service.timeout_seconds = config.data().service_timeout_seconds();
  service.patch_rows = options.patch_rows;
  service.patch_cols = options.patch_cols;
  service.batch_size = options.batch_size;
  service.reconnect_seconds = config.data().service_reconnect_seconds();
  service.on_service_lost = std::move(on_service_lost);
  service.on_reconnected = std::move(on_reconnected);
  return std::make_unique<hds::data_client::ShmBatchSource>(service);
}

}  // namespace hds::trainer
