// A run's curves without a server. Rank 0 keeps <output_dir>/history.jsonl: one row per
// train.log_every_steps steps (and at each epoch's end) with the means of the interval's losses,
// per head and term, and its learning rate, and one row per validation. At each validation, and
// when the history is closed, it redraws <output_dir>/curves.svg from those rows: total loss,
// segmentation and MIL loss per head, learning rate, validation Dice / accuracy / AUC, against
// the global step. A resumed run continues the file, dropping the rows of the steps it redoes.
// No LibTorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint.pb.h"
#include "hds/trainer/step_report.h"

namespace hds::trainer {

// One row of the history: the mean of an interval of steps, or a validation.
struct HistoryRow {
  int64_t step = 0;  // global step at the interval's end (or of the validation)
  int epoch = 0;
  bool validation = false;
  // Training rows.
  int steps = 0;  // in the interval
  double loss = 0;
  double learning_rate = 0;
  std::vector<double> seg;  // indexed by head 0..5; NaN where the head is not built
  std::vector<double> cls;
  // Validation rows.
  double dice = 0;
  double accuracy = 0;
  double auc = 0;
};

class TrainingHistory final : public TrainingObserver {
 public:
  // Reads the rows an earlier run of `output_dir` left (a line that does not parse, e.g. one cut
  // by a crash, ends what is read). Throws std::runtime_error naming the file when it cannot be
  // written.
  TrainingHistory(const std::string& output_dir, int log_every_steps);
  // Writes the last partial interval and curves.svg.
  ~TrainingHistory() override;
  TrainingHistory(const TrainingHistory&) = delete;
  TrainingHistory& operator=(const TrainingHistory&) = delete;

  void on_step(const StepReport& report) override;
  // Appends the validation and redraws curves.svg.
  void on_validation(const hds::checkpoint::ValidationResult& validation,
                     const hds::checkpoint::ValidationResult& best_dice) override;

  const std::vector<HistoryRow>& rows() const { return rows_; }
  const std::string& curves_path() const { return curves_path_; }

 private:
  void flush_interval();
  void append(const HistoryRow& row);
  void write_curves() const;

  const std::string path_;
  const std::string curves_path_;
  const int log_every_steps_;
  std::vector<HistoryRow> rows_;
  bool resumed_checked_ = false;
  HistoryRow interval_;  // the steps since the last training row
  int64_t last_step_ = 0;
};

// The SVG document of `rows` (what curves.svg holds), titled `title`.
std::string training_curves_svg(const std::vector<HistoryRow>& rows, const std::string& title);

}  // namespace hds::trainer
