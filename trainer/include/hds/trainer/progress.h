// Step progress on rank 0's terminal, from the StepReports (the facts the metrics export): on a
// TTY one line redrawn in place, a bar with epoch, step, loss, patches/s, data-wait share and ETA;
// elsewhere (logs, Slurm) a plain line every train.log_every_steps steps and at each epoch's end.
// No LibTorch.
#pragma once

#include <chrono>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "hds/trainer/step_report.h"

namespace hds::trainer {

enum class ProgressStyle { bar, lines };

// `choice` is "auto", "bar" or "lines"; auto picks the bar when `fd` is a terminal that redraws
// in place (hds/common/terminal.h) and the process is not a rank started by mpirun or srun
// (whose terminal is the launcher's). Throws std::invalid_argument for another choice.
ProgressStyle choose_progress_style(const std::string& choice, int fd);

// "1h02m05s", "3m07s", "42s"; "?" for a negative or non-finite time.
std::string format_duration(double seconds);

class ProgressDisplay final : public TrainingObserver {
 public:
  // Writes to `out` (which must outlive the display); `epochs` of the run for the ETA.
  ProgressDisplay(std::ostream& out, ProgressStyle style, int epochs, int log_every_steps);
  // Ends the bar's line, so that what follows starts on a line of its own.
  ~ProgressDisplay() override;
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  // The run's other lines (FitOptions::log): written above the bar, which is then drawn again.
  std::ostream& stream();
  void on_step(const StepReport& report) override;

 private:
  class LineBuffer;
  void draw_bar();
  // What a progress line says after its head, each with its priority (higher stays longer).
  struct Fact {
    std::string text;
    int priority;
  };
  std::vector<Fact> facts() const;  // loss (seg cls) lr patches/s data eta
  // `head` and as many facts as fit in `width`, dropping the lowest priorities first.
  static std::string joined(std::vector<Fact> facts, const std::string& head, size_t width);

  std::ostream& out_;
  const ProgressStyle style_;
  const int epochs_;
  const int log_every_steps_;
  std::unique_ptr<LineBuffer> buffer_;
  std::unique_ptr<std::ostream> stream_;
  StepReport last_;
  bool started_ = false;
  std::chrono::steady_clock::time_point start_;  // when the first step reported began
  std::chrono::steady_clock::time_point last_draw_;
  int64_t steps_ = 0;  // steps reported by this run
  int64_t patches_ = 0;
  double step_seconds_ = 0;  // summed, for the data-wait share
  double data_wait_seconds_ = 0;
};

}  // namespace hds::trainer
