#include "inference.h"

#include "hds/common/text_format.h"
#include "hds/data/dicom.h"
#include "hds/data/png_io.h"
#include "hds/scoring/evaluation_report.h"
#include "hds/scoring/scoring.h"
#include "hds/trainer/bundle.h"
#include "hds/trainer/checkpoint.h"
#include "hds/trainer/export.h"
#include "hds/trainer/training.h"

namespace hds::trainer {

TrainedModel::TrainedModel(const std::string& checkpoint, const std::vector<std::string>& overrides,
                           const std::string& device) {
  if (is_bundle(checkpoint)) {
    const BundleModel bundle = read_bundle(checkpoint, overrides);
    config_ = bundle.config;
    normalisation_ = bundle.normalisation;
    version_ = bundle.version;
    device_uid_ = bundle.device_uid;
    model_ = HdsNet(config_.model());
    import_weights(bundle.weights, model_);
  } else {
    const hds::checkpoint::CheckpointMeta meta = read_checkpoint_meta(checkpoint);
    config_ = saved_config(meta, checkpoint, overrides);
    if (meta.has_data_mean() && meta.has_data_std()) {
      normalisation_ = Normalisation{meta.data_mean(), meta.data_std()};
    }
    version_ = hds::common::without_trailing_slash(checkpoint).filename().string() + " step " +
               std::to_string(meta.global_step());
    device_uid_ = hds::data::new_dicom_uid();
    model_ = HdsNet(config_.model());
    load_checkpoint(checkpoint, model_, nullptr);
  }
  device_ = resolve_device(device.empty() ? config_.train().device() : device);
  model_->to(device_);
}

std::vector<HeadPrediction> TrainedModel::predict(const hds::data::Film& film) {
  return predict_heads(model_, film, config_.loss(), device_);
}

std::vector<uint8_t> operating_mask(const std::vector<float>& probability) {
  std::vector<uint8_t> mask(probability.size());
  for (size_t i = 0; i < mask.size(); ++i) {
    mask[i] = probability[i] > hds::scoring::kOperatingThreshold;
  }
  return mask;
}

void write_overlay_png(const std::string& path, int rows, int cols,
                       const std::vector<uint8_t>& grey, const uint8_t* truth,
                       const uint8_t* predicted) {
  const std::vector<uint8_t> none(truth ? 0 : grey.size(), 0);
  hds::data::write_rgb_png(
      path, rows, cols,
      hds::scoring::overlay_rgb(grey, truth ? truth : none.data(), predicted, rows, cols));
}

}  // namespace hds::trainer
