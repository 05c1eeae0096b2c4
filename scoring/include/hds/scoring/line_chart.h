// Line charts as SVG: the evaluation's ROC and FROC curves (curve_svg) and the trainer's training
// curves. A chart draws its series as lines in a fixed colour cycle inside a frame, with "nice"
// ticks on both axes and a legend; several charts in a grid make one standalone document.
// Stateless functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hds::scoring {

// One line of a chart: its (x, y) points joined in order. A point with a non-finite coordinate
// (or, on a log axis, y <= 0) is left out and breaks the line there.
struct ChartSeries {
  std::string name;  // the legend's entry; an unnamed series has none
  std::vector<std::pair<double, double>> points;
};

struct Chart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<ChartSeries> series;
  // Fixed axis ends. An unset end follows the data with 5% headroom, and a flat series still
  // gets a span; on a log axis an end <= 0 counts as unset.
  std::optional<double> x_min;
  std::optional<double> x_max;
  std::optional<double> y_min;
  std::optional<double> y_max;
  bool log_y = false;  // y on a log scale, for losses over several decades
};

// `charts` in a grid of `columns` per row under `title`, as one standalone SVG document. Each
// chart is a 360 x 330 pixel cell (18 more per legend row, as many as the chart with the most)
// below a 30-pixel title band; its plot is the 260 x 260 square 50 pixels from the cell's left
// and 20 from its top, and its lines are clipped 3 pixels outside it. Series take the colours
// #1f77b4, #ff7f0e, #2ca02c, #d62728, ... (matplotlib's ten) in order. Text is XML-escaped.
std::string charts_svg(const std::vector<Chart>& charts, int columns, const std::string& title);

// The ticks of an axis from `low` to `high`: every multiple of one step in [low, high], the step
// the smallest of 1, 2 or 5 x 10^k that gives 3 to 5 ticks (2.5 x 10^k where none of them does).
// {low} when low == high; none when either is not finite.
std::vector<double> nice_ticks(double low, double high);

}  // namespace hds::scoring
