// Rank 0's progress display from StepReports: plain lines every log_every_steps steps and at each
// epoch's end with the metrics' facts, or one bar redrawn in place that other lines interrupt;
// durations as people read them; which output gets the bar.
#include "hds/trainer/progress.h"

#include <gtest/gtest.h>
#include <pty.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace hds::trainer {
namespace {

// Step `step` (1-based) of 1-based `epoch`, 4 steps an epoch: 0.5 s each, a quarter waiting for
// data, 8 patches over the ranks.
StepReport report(int epoch, int step) {
  StepReport r;
  r.epoch = epoch;
  r.step = step;
  r.steps_per_epoch = 4;
  r.global_step = (epoch - 1) * 4 + step;
  r.job_patches = 8;
  r.loss = 1.5;
  r.seg_loss = 1.25;
  r.cls_loss = 0.25;
  r.learning_rate = 0.01;
  r.heads = {5};
  r.seconds = 0.5;
  r.data_wait_seconds = 0.125;
  return r;
}

TEST(Progress, durations_read_as_hours_minutes_seconds) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(42.4), "42s");
  EXPECT_EQ(format_duration(65), "1m05s");
  EXPECT_EQ(format_duration(3725), "1h02m05s");
  EXPECT_EQ(format_duration(-1), "?");
  EXPECT_EQ(format_duration(1.0 / 0.0), "?");
}

TEST(Progress, lines_come_every_log_every_steps_and_at_the_end_of_each_epoch) {
  std::ostringstream out;
  {
    ProgressDisplay display(out, ProgressStyle::lines, 3, 3);
    for (int step = 1; step <= 4; ++step) display.on_step(report(1, step));
    display.stream() << "validation epoch 1: dice 0.5\n";
  }
  const std::string text = out.str();
  EXPECT_EQ(text.find('\r'), std::string::npos) << text;
  // Step 3 (the third step of the run) and step 4 (the epoch's end), no others.
  EXPECT_NE(text.find("epoch 1/3 step 3/4 loss 1.5 (seg 1.25 cls 0.25) lr 0.01 "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("epoch 1/3 step 4/4 "), std::string::npos) << text;
  EXPECT_EQ(text.find("step 1/4"), std::string::npos) << text;
  EXPECT_EQ(text.find("step 2/4"), std::string::npos) << text;
  // The data-wait share of the steps: 0.125 of 0.5 s.
  EXPECT_NE(text.find(" data 25% eta "), std::string::npos) << text;
  EXPECT_NE(text.find("patches/s"), std::string::npos) << text;
  EXPECT_NE(text.find("\nvalidation epoch 1: dice 0.5\n"), std::string::npos) << text;
}

TEST(Progress, the_bar_is_redrawn_in_place_and_other_lines_print_above_it) {
  std::ostringstream out;
  {
    ProgressDisplay display(out, ProgressStyle::bar, 2, 1);
    display.on_step(report(1, 1));
    display.on_step(report(1, 4));  // the epoch's end is always drawn
    display.stream() << "checkpoint runs/x\n";
  }
  const std::string text = out.str();
  // 4 of 8 steps: half the bar.
  EXPECT_NE(text.find("\r\033[Kepoch 1/2 [##########..........] 50% step 4/4 loss 1.5"),
            std::string::npos)
      << text;
  // The line erases the bar, then the bar comes back below it.
  EXPECT_NE(text.find("\r\033[Kcheckpoint runs/x\n\r\033[Kepoch 1/2 ["), std::string::npos) << text;
  EXPECT_EQ(text.find("\nepoch"), std::string::npos) << "a plain progress line in bar mode";
  EXPECT_EQ(text.back(), '\n') << "the bar's line is not ended";
}

TEST(Progress, auto_draws_a_bar_on_a_terminal_only_outside_mpirun_and_srun) {
  EXPECT_EQ(choose_progress_style("bar", -1), ProgressStyle::bar);
  EXPECT_EQ(choose_progress_style("lines", -1), ProgressStyle::lines);
  EXPECT_THROW(choose_progress_style("fancy", -1), std::invalid_argument);
  int ends[2];
  ASSERT_EQ(pipe(ends), 0);
  EXPECT_EQ(choose_progress_style("auto", ends[1]), ProgressStyle::lines);
  close(ends[0]);
  close(ends[1]);
  int master = -1, terminal = -1;
  ASSERT_EQ(openpty(&master, &terminal, nullptr, nullptr, nullptr), 0);
  setenv("TERM", "xterm", 1);
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    unsetenv(variable);
  }
  EXPECT_EQ(choose_progress_style("auto", terminal), ProgressStyle::bar);
  // A rank of mpirun: its terminal is mpirun's.
  setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  EXPECT_EQ(choose_progress_style("auto", terminal), ProgressStyle::lines);
  unsetenv("OMPI_COMM_WORLD_SIZE");
  close(master);
  close(terminal);
}

}  // namespace
}  // namespace hds::trainer
