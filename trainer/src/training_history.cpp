#include "hds/trainer/training_history.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "hds/common/read_file.h"
#include "hds/scoring/line_chart.h"

namespace hds::trainer {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kHeads = 6;
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// NaN (an unbuilt head, a term turned off) is written as null.
json number_or_null(double value) { return std::isfinite(value) ? json(value) : json(); }
double from_number_or_null(const json& value) {
  return value.is_number() ? value.get<double>() : kNaN;
}

json to_json(const HistoryRow& row) {
  json line{{"step", row.step}, {"epoch", row.epoch}};
  if (row.validation) {
    line["validation"] = {{"dice", number_or_null(row.dice)},
                          {"accuracy", number_or_null(row.accuracy)},
                          {"auc", number_or_null(row.auc)}};
    return line;
  }
  auto heads = [](const std::vector<double>& values) {
    json list = json::array();
    for (double value : values) list.push_back(number_or_null(value));
    return list;
  };
  line["steps"] = row.steps;
  line["loss"] = number_or_null(row.loss);
  line["lr"] = row.learning_rate;
  line["seg"] = heads(row.seg);
  line["cls"] = heads(row.cls);
  return line;
}

HistoryRow from_json(const json& line) {
  HistoryRow row;
  row.step = line.at("step").get<int64_t>();
  row.epoch = line.at("epoch").get<int>();
  if (line.contains("validation")) {
    const json& v = line["validation"];
    row.validation = true;
    row.dice = from_number_or_null(v.at("dice"));
    row.accuracy = from_number_or_null(v.at("accuracy"));
    row.auc = from_number_or_null(v.at("auc"));
    return row;
  }
  row.steps = line.at("steps").get<int>();
  row.loss = from_number_or_null(line.at("loss"));
  row.learning_rate = line.at("lr").get<double>();
  for (const json& value : line.at("seg")) row.seg.push_back(from_number_or_null(value));
  for (const json& value : line.at("cls")) row.cls.push_back(from_number_or_null(value));
  return row;
}

HistoryRow empty_interval() {
  HistoryRow row;
  row.seg.assign(kHeads, 0);
  row.cls.assign(kHeads, 0);
  return row;
}

}  // namespace

TrainingHistory::TrainingHistory(const std::string& output_dir, int log_every_steps)
    : path_((fs::path(output_dir) / "history.jsonl").string()),
      curves_path_((fs::path(output_dir) / "curves.svg").string()),
      log_every_steps_(log_every_steps < 1 ? 1 : log_every_steps),
      interval_(empty_interval()) {
  std::ifstream in(path_);
  for (std::string text; std::getline(in, text);) {
    const json line = json::parse(text, nullptr, false);
    if (line.is_discarded() || !line.is_object()) break;
    try {
      rows_.push_back(from_json(line));
    } catch (const json::exception&) {
      break;
    }
  }
}

TrainingHistory::~TrainingHistory() {
  try {
    flush_interval();
    write_curves();
  } catch (const std::exception&) {
    // The run's outcome matters more than its picture; the next validation draws it again.
  }
}

void TrainingHistory::on_step(const StepReport& report) {
  if (!resumed_checked_) {
    // Steps from report.global_step on are done (again) by this run: their old rows go.
    resumed_checked_ = true;
    std::vector<HistoryRow> kept;
    for (const HistoryRow& row : rows_) {
      if (row.step < report.global_step) kept.push_back(row);
    }
    rows_ = std::move(kept);
    std::string text;
    for (const HistoryRow& row : rows_) text += to_json(row).dump() + "\n";
    hds::common::replace_file(path_, text);
  }
  last_step_ = report.global_step;
  interval_.step = report.global_step;
  interval_.epoch = report.epoch;
  interval_.learning_rate = report.learning_rate;
  // A rank with no patches in the epoch's last step has no losses: the step does not count.
  if (!report.heads.empty()) {
    ++interval_.steps;
    interval_.loss += report.loss;
    std::vector<bool> built(kHeads, false);
    for (size_t i = 0; i < report.heads.size(); ++i) {
      const int head = report.heads[i];
      if (head < 0 || head >= kHeads) continue;
      built[head] = true;
      if (i < report.seg.size()) interval_.seg[head] += report.seg[i];
      if (i < report.cls.size()) interval_.cls[head] += report.cls[i];
    }
    for (int head = 0; head < kHeads; ++head) {
      if (!built[head]) interval_.seg[head] = interval_.cls[head] = kNaN;
    }
  }
  if (interval_.steps >= log_every_steps_ || report.step == report.steps_per_epoch) {
    flush_interval();
  }
}

void TrainingHistory::flush_interval() {
  if (interval_.steps == 0) return;
  HistoryRow row = interval_;
  row.loss /= row.steps;
  for (double& value : row.seg) value /= row.steps;
  for (double& value : row.cls) value /= row.steps;
  append(row);
  interval_ = empty_interval();
}

void TrainingHistory::on_validation(const hds::checkpoint::ValidationResult& validation,
                                    const hds::checkpoint::ValidationResult& /*best_dice*/) {
  flush_interval();
  HistoryRow row;
  row.validation = true;
  row.step = last_step_;
  row.epoch = validation.epoch();
  row.dice = validation.dice();
  row.accuracy = validation.accuracy();
  row.auc = validation.auc();
  append(row);
  write_curves();
}

void TrainingHistory::append(const HistoryRow& row) {
  hds::common::append_record(path_, to_json(row).dump() + "\n");
  rows_.push_back(row);
}

void TrainingHistory::write_curves() const {
  if (rows_.empty()) return;
  // Whole or not at all: a browser showing the file never sees half a document.
  hds::common::replace_file(curves_path_,
                            training_curves_svg(rows_, fs::path(path_).parent_path().string()));
}

std::string training_curves_svg(const std::vector<HistoryRow>& rows, const std::string& title) {
  using hds::scoring::Chart;
  using hds::scoring::ChartSeries;
  auto chart = [](const char* title, const char* y_label) {
    Chart made;
    made.title = title;
    made.x_label = "global step";
    made.y_label = y_label;
    return made;
  };
  Chart total = chart("Total weighted loss", "loss");
  Chart seg = chart("Segmentation loss per head", "CE (+ Dice term)");
  Chart cls = chart("MIL loss per head", "MIL loss");
  Chart lr = chart("Learning rate", "lr");
  Chart validation = chart("Validation", "value");
  total.log_y = seg.log_y = cls.log_y = true;
  validation.y_min = 0;
  validation.y_max = 1;
  total.series = {ChartSeries{"loss", {}}};
  lr.series = {ChartSeries{"lr", {}}};
  validation.series = {ChartSeries{"Dice", {}}, ChartSeries{"accuracy", {}},
                       ChartSeries{"AUC", {}}};
  for (int head = 0; head < kHeads; ++head) {
    seg.series.push_back(ChartSeries{"head " + std::to_string(head), {}});
    cls.series.push_back(ChartSeries{"head " + std::to_string(head), {}});
  }
  for (const HistoryRow& row : rows) {
    const auto x = static_cast<double>(row.step);
    if (row.validation) {
      validation.series[0].points.emplace_back(x, row.dice);
      validation.series[1].points.emplace_back(x, row.accuracy);
      validation.series[2].points.emplace_back(x, row.auc);
      continue;
    }
    total.series[0].points.emplace_back(x, row.loss);
    lr.series[0].points.emplace_back(x, row.learning_rate);
    for (int head = 0; head < kHeads && head < static_cast<int>(row.seg.size()); ++head) {
      seg.series[head].points.emplace_back(x, row.seg[head]);
      cls.series[head].points.emplace_back(x, row.cls[head]);
    }
  }
  // Heads that are not built (or terms turned off) have no points worth a legend entry.
  for (Chart* chart : {&seg, &cls}) {
    std::vector<ChartSeries> drawn;
    for (ChartSeries& series : chart->series) {
      bool any = false;
      for (const auto& [x, y] : series.points) any = any || (std::isfinite(y) && y > 0);
      if (any) drawn.push_back(std::move(series));
    }
    chart->series = std::move(drawn);
  }
  return hds::scoring::charts_svg({total, seg, cls, lr, validation}, 2, title);
}

}  // namespace hds::trainer
