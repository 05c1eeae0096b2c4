#include "hds/trainer/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <streambuf>

#include "hds/common/terminal.h"

namespace hds::trainer {

using Clock = std::chrono::steady_clock;

namespace {

// The bar is redrawn at most this often (a tiny model steps hundreds of times a second).
constexpr double kRedrawSeconds = 0.1;
// ANSI: back to the line's start and erase it.
constexpr const char* kEraseLine = "\r\033[K";

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

int terminal_columns(std::ostream& out) {
  // Only stdout and stderr are terminals we could measure; 100 columns otherwise.
  const int fd = out.rdbuf() == std::cerr.rdbuf() ? STDERR_FILENO : STDOUT_FILENO;
  winsize size{};
  if (ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col >= 20) return size.ws_col;
  return 100;
}

}  // namespace

ProgressStyle choose_progress_style(const std::string& choice, int fd) {
  if (choice == "bar") return ProgressStyle::bar;
  if (choice == "lines") return ProgressStyle::lines;
  if (choice != "auto") {
    throw std::invalid_argument("progress \"" + choice + "\": use auto, bar or lines");
  }
  // A rank started by mpirun or srun writes to the launcher's pipe or pseudo-terminal, not to a
  // person's: the launcher says --progress bar when its own output is a terminal.
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    if (std::getenv(variable) != nullptr) return ProgressStyle::lines;
  }
  return hds::common::redraws_in_place(fd) ? ProgressStyle::bar : ProgressStyle::lines;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<int64_t>(seconds + 0.5);
  std::ostringstream out;
  if (total >= 3600) out << total / 3600 << "h";
  if (total >= 60)
    out << std::setw(total >= 3600 ? 2 : 1) << std::setfill('0') << (total / 60) % 60 << "m";
  out << std::setw(total >= 60 ? 2 : 1) << std::setfill('0') << total % 60 << "s";
  return out.str();
}

// Passes the run's lines to the display's output; with the bar shown, erases it before a line
// and draws it again once the line is complete.
class ProgressDisplay::LineBuffer : public std::streambuf {
 public:
  explicit LineBuffer(ProgressDisplay& display) : display_(display) {}
  bool bar_shown = false;

 protected:
  int overflow(int c) override {
    if (c == traits_type::eof()) return traits_type::not_eof(c);
    std::ostream& out = display_.out_;
    if (bar_shown) {
      out << kEraseLine;
      bar_shown = false;
    }
    out.put(static_cast<char>(c));
    if (c == '\n') {
      out.flush();
      if (display_.style_ == ProgressStyle::bar && display_.started_) display_.draw_bar();
    }
    return c;
  }
  int sync() override {
    display_.out_.flush();
    return 0;
  }

 private:
  ProgressDisplay& display_;
};

ProgressDisplay::ProgressDisplay(std::ostream& out, ProgressStyle style, int epochs,
                                 int log_every_steps)
    : out_(out),
      style_(style),
      epochs_(epochs),
      log_every_steps_(log_every_steps < 1 ? 1 : log_every_steps),
      buffer_(std::make_unique<LineBuffer>(*this)),
      stream_(std::make_unique<std::ostream>(buffer_.get())) {}

ProgressDisplay::~ProgressDisplay() {
  if (buffer_->bar_shown) out_ << "\n" << std::flush;
}

std::ostream& ProgressDisplay::stream() { return *stream_; }

std::vector<ProgressDisplay::Fact> ProgressDisplay::facts() const {
  const double elapsed = seconds_between(start_, Clock::now());
  const int64_t total_steps = static_cast<int64_t>(last_.steps_per_epoch) * epochs_;
  const double eta =
      elapsed / static_cast<double>(steps_) * static_cast<double>(total_steps - last_.global_step);
  const double data_share = step_seconds_ > 0 ? data_wait_seconds_ / step_seconds_ : 0;
  auto text = [](auto... parts) {
    std::ostringstream out;
    out << std::setprecision(5);
    (out << ... << parts);
    return out.str();
  };
  std::ostringstream rate;
  rate << std::setprecision(3) << (elapsed > 0 ? static_cast<double>(patches_) / elapsed : 0);
  // In display order; on a narrow terminal the lowest priorities go first.
  return {{text("loss ", last_.loss), 5},
          {text("(seg ", last_.seg_loss, " cls ", last_.cls_loss, ")"), 1},
          {text("lr ", last_.learning_rate), 2},
          {rate.str() + " patches/s", 4},
          {text("data ", std::lround(100 * data_share), "%"), 3},
          {"eta " + format_duration(eta), 6}};
}

std::string ProgressDisplay::joined(std::vector<Fact> facts, const std::string& head,
                                    size_t width) {
  for (;;) {
    std::string line = head;
    for (const Fact& fact : facts) line += " " + fact.text;
    if (line.size() <= width || facts.empty()) return line.substr(0, width);
    facts.erase(std::min_element(facts.begin(), facts.end(), [](const Fact& a, const Fact& b) {
      return a.priority < b.priority;
    }));
  }
}

void ProgressDisplay::on_step(const StepReport& report) {
  const auto now = Clock::now();
  if (!started_) {
    start_ = now - std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(report.seconds));
    started_ = true;
  }
  last_ = report;
  ++steps_;
  patches_ += report.job_patches;
  step_seconds_ += report.seconds;
  data_wait_seconds_ += report.data_wait_seconds;
  const bool epoch_end = report.step == report.steps_per_epoch;
  if (style_ == ProgressStyle::lines) {
    if (epoch_end || steps_ % log_every_steps_ == 0) {
      const std::string head = "epoch " + std::to_string(report.epoch) + "/" +
                               std::to_string(epochs_) + " step " + std::to_string(report.step) +
                               "/" + std::to_string(report.steps_per_epoch);
      out_ << joined(facts(), head, std::string::npos) << std::endl;
    }
    return;
  }
  if (epoch_end || seconds_between(last_draw_, now) >= kRedrawSeconds) draw_bar();
}

void ProgressDisplay::draw_bar() {
  last_draw_ = Clock::now();
  const int64_t total_steps = static_cast<int64_t>(last_.steps_per_epoch) * epochs_;
  const double done =
      total_steps > 0 ? std::min(1.0, static_cast<double>(last_.global_step) / total_steps) : 0;
  constexpr int kBarWidth = 20;
  const int filled = static_cast<int>(done * kBarWidth);
  std::ostringstream head;
  head << "epoch " << last_.epoch << "/" << epochs_ << " [" << std::string(filled, '#')
       << std::string(kBarWidth - filled, '.') << "] " << std::lround(100 * done) << "% step "
       << last_.step << "/" << last_.steps_per_epoch;
  // One character short of the width: a full line would wrap on some terminals.
  const size_t columns = static_cast<size_t>(terminal_columns(out_)) - 1;
  out_ << kEraseLine << joined(facts(), head.str(), columns) << std::flush;
  buffer_->bar_shown = true;
}

}  // namespace hds::trainer
