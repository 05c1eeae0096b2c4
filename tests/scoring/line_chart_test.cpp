// The SVG line charts (line_chart.h) against hand-computed ticks and pixel positions (plot
// 50..310 in a 360-pixel cell below a 30-pixel title band), and as Chromium draws them.
#include "hds/scoring/line_chart.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "hds/test/files.h"
#include "hds/test/screenshot.h"

namespace hds::scoring {
namespace {

using Points = std::vector<std::pair<double, double>>;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInfinity = std::numeric_limits<double>::infinity();

size_t count_of(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

// The value of `attribute` in each `element` of `svg`, in order.
std::vector<std::string> attributes(const std::string& svg, const std::string& element,
                                    const std::string& attribute) {
  std::vector<std::string> values;
  for (size_t at = svg.find("<" + element + " "); at != std::string::npos;
       at = svg.find("<" + element + " ", at + 1)) {
    const size_t end = svg.find('>', at);
    const size_t start = svg.find(" " + attribute + "=\"", at);
    if (start == std::string::npos || start > end) continue;
    const size_t value = start + attribute.size() + 3;
    values.push_back(svg.substr(value, svg.find('"', value) - value));
  }
  return values;
}

// Each polyline's points, in pixels.
std::vector<Points> polylines(const std::string& svg) {
  std::vector<Points> lines;
  for (const std::string& points : attributes(svg, "polyline", "points")) {
    std::istringstream in(points);
    Points line;
    double x = 0, y = 0;
    char comma = 0;
    while (in >> x >> comma >> y) line.emplace_back(x, y);
    lines.push_back(line);
  }
  return lines;
}

Chart chart_of(std::vector<ChartSeries> series) {
  Chart chart;
  chart.title = "chart";
  chart.x_label = "step";
  chart.y_label = "value";
  chart.series = std::move(series);
  return chart;
}

void expect_ticks(double low, double high, const std::vector<double>& expected) {
  const std::vector<double> ticks = nice_ticks(low, high);
  ASSERT_EQ(ticks.size(), expected.size()) << low << ".." << high;
  for (size_t i = 0; i < ticks.size(); ++i)
    EXPECT_DOUBLE_EQ(ticks[i], expected[i]) << low << ".." << high << " tick " << i;
}

TEST(NiceTicks, picks_the_smallest_1_2_5_step_giving_3_to_5_ticks) {
  expect_ticks(0, 0.87, {0, 0.2, 0.4, 0.6, 0.8});  // 0.1 gives 9
  expect_ticks(0, 1, {0, 0.5, 1});                 // 0.2 gives 6
  expect_ticks(0, 10, {0, 5, 10});
  expect_ticks(-3, 7, {-2, 0, 2, 4, 6});
  expect_ticks(0.1, 0.5, {0.1, 0.2, 0.3, 0.4, 0.5});  // both ends are ticks
  expect_ticks(120, 38000, {10000, 20000, 30000});    // 5000 gives 7
  expect_ticks(0.00013, 0.00071, {0.0002, 0.0004, 0.0006});
  expect_ticks(0.87, 0, {0, 0.2, 0.4, 0.6, 0.8});  // ends in either order
}

TEST(NiceTicks, falls_back_to_2_5_where_1_2_5_jump_from_6_ticks_to_2) {
  // 0.2 gives 0.2, 0.4, ..., 1.2 (6) and 0.5 gives 0.5, 1 (2).
  expect_ticks(0.2, 1.2, {0.25, 0.5, 0.75, 1});
}

TEST(NiceTicks, gives_3_to_5_evenly_stepped_ticks_inside_any_range) {
  for (double low : {-7.3, -1.0, 0.0, 0.013, 2.0, 999.0}) {
    for (double span = 0.001; span < 1e6; span *= 1.37) {
      const std::vector<double> ticks = nice_ticks(low, low + span);
      ASSERT_GE(ticks.size(), 3u) << low << " + " << span;
      ASSERT_LE(ticks.size(), 5u) << low << " + " << span;
      EXPECT_GE(ticks.front(), low - 1e-9 * span);
      EXPECT_LE(ticks.back(), low + span + 1e-9 * span);
      const double step = ticks[1] - ticks[0];
      const double mantissa = step / std::pow(10.0, std::floor(std::log10(step) + 1e-9));
      EXPECT_TRUE(std::abs(mantissa - 1) < 1e-6 || std::abs(mantissa - 2) < 1e-6 ||
                  std::abs(mantissa - 2.5) < 1e-6 || std::abs(mantissa - 5) < 1e-6)
          << "step " << step << " for " << low << " + " << span;
      for (size_t i = 1; i < ticks.size(); ++i)
        EXPECT_NEAR(ticks[i] - ticks[i - 1], step, 1e-9 * step);
    }
  }
}

TEST(NiceTicks, a_point_range_is_its_value_and_a_non_finite_one_has_none) {
  expect_ticks(3, 3, {3});
  EXPECT_TRUE(nice_ticks(0, kNaN).empty());
  EXPECT_TRUE(nice_ticks(-kInfinity, 1).empty());
}

TEST(LineChart, escapes_the_text_it_writes) {
  Chart chart = chart_of({{"<&\">", {{0, 0}, {1, 1}}}});
  chart.title = "a<b";
  chart.x_label = "x > 0";
  chart.y_label = "it's";
  const std::string svg = charts_svg({chart}, 1, "R&D");
  EXPECT_NE(svg.find(">&lt;&amp;&quot;&gt;</text>"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">a&lt;b</text>"), std::string::npos);
  EXPECT_NE(svg.find(">x &gt; 0</text>"), std::string::npos);
  EXPECT_NE(svg.find(">it&apos;s</text>"), std::string::npos);
  EXPECT_NE(svg.find(">R&amp;D</text>"), std::string::npos);
  EXPECT_EQ(svg.find("<&\">"), std::string::npos);
  EXPECT_EQ(svg.find("R&D"), std::string::npos);
}

TEST(LineChart, a_non_finite_point_breaks_the_line) {
  Chart chart = chart_of(
      {{"loss", {{0, 0}, {1, 1}, {kNaN, 0.5}, {2, 0}, {3, 1}, {4, kInfinity}, {5, 0}, {6, 1}}}});
  chart.x_min = 0;
  chart.x_max = 6;
  chart.y_min = 0;
  chart.y_max = 1;
  const std::vector<Points> lines = polylines(charts_svg({chart}, 1, ""));
  ASSERT_EQ(lines.size(), 3u);
  // x: 260 / 6 pixels a step.
  EXPECT_EQ(lines[0], (Points{{50, 310}, {93.3, 50}}));
  EXPECT_EQ(lines[1], (Points{{136.7, 310}, {180, 50}}));
  EXPECT_EQ(lines[2], (Points{{266.7, 310}, {310, 50}}));
}

TEST(LineChart, a_lone_point_between_gaps_is_a_dot) {
  Chart chart = chart_of({{"lr", {{0, 0.5}, {1, kNaN}, {2, 0.2}, {3, 0.4}}}});
  const std::string svg = charts_svg({chart}, 1, "");
  EXPECT_EQ(count_of(svg, "<circle "), 1u) << svg;
  EXPECT_EQ(polylines(svg).size(), 1u);
}

TEST(LineChart, log_y_spaces_1_10_100_equally) {
  Chart fixed = chart_of({{"loss", {{0, 1}, {1, 10}, {2, 100}}}});
  fixed.log_y = true;
  fixed.x_min = 0;
  fixed.x_max = 2;
  fixed.y_min = 1;
  fixed.y_max = 100;
  const std::string fixed_svg = charts_svg({fixed}, 1, "");
  ASSERT_EQ(polylines(fixed_svg).size(), 1u);
  EXPECT_EQ(polylines(fixed_svg)[0], (Points{{50, 310}, {180, 180}, {310, 50}}));
  // The decades are the ticks.
  for (const char* label : {">1</text>", ">10</text>", ">100</text>"})
    EXPECT_NE(fixed_svg.find(label), std::string::npos) << label << "\n" << fixed_svg;

  // From the data: the same spacing, with the non-positive values left out (and the x axis
  // fitted to the points that remain).
  Chart free = chart_of({{"loss", {{0, 1}, {1, 10}, {2, 100}, {3, 0}, {4, -1}}}});
  free.log_y = true;
  const std::vector<Points> lines = polylines(charts_svg({free}, 1, ""));
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_EQ(lines[0].size(), 3u);
  const double y1 = lines[0][0].second, y10 = lines[0][1].second, y100 = lines[0][2].second;
  EXPECT_GT(y1, y10);  // upwards on the screen
  EXPECT_NEAR(y1 - y10, y10 - y100, 0.11);
  // 5% headroom of the two decades at each end: 1 sits 260 * 0.1 / 2.2 above the bottom.
  EXPECT_NEAR(y1, 310 - 260 * 0.1 / 2.2, 0.06);
  EXPECT_NEAR(lines[0][2].first, 50 + 260 * 2.1 / 2.2, 0.06);
}

// The y tick labels of a log chart with fixed ends `low`..`high`, bottom to top.
std::vector<std::string> log_tick_labels(double low, double high) {
  Chart chart = chart_of({{"loss", {{0, low}, {1, high}}}});
  chart.log_y = true;
  chart.y_min = low;
  chart.y_max = high;
  const std::string svg = charts_svg({chart}, 1, "");
  std::vector<std::string> labels;
  const std::string y_tick = "text-anchor=\"end\">";
  for (size_t at = svg.find(y_tick); at != std::string::npos; at = svg.find(y_tick, at + 1)) {
    const size_t start = at + y_tick.size();
    labels.push_back(svg.substr(start, svg.find('<', start) - start));
  }
  return labels;
}

TEST(LineChart, log_ticks_are_decades_every_few_decades_or_1_2_5_within_them) {
  EXPECT_EQ(log_tick_labels(1, 100), (std::vector<std::string>{"1", "10", "100"}));
  EXPECT_EQ(log_tick_labels(0.001, 10),
            (std::vector<std::string>{"0.001", "0.01", "0.1", "1", "10"}));
  // 11 decades: every 3 (every 2 gives 6, every 5 only 2).
  EXPECT_EQ(log_tick_labels(1e-6, 1e4), (std::vector<std::string>{"1e-6", "0.001", "1", "1000"}));
  // Under 2 decades: 1, 2, 5 x 10^k gives 6 here, 1, 3 x 10^k 3.
  EXPECT_EQ(log_tick_labels(0.05, 2), (std::vector<std::string>{"0.1", "0.3", "1"}));
  // Well under a decade: the values' own nice ticks.
  EXPECT_EQ(log_tick_labels(0.15, 0.6),
            (std::vector<std::string>{"0.2", "0.3", "0.4", "0.5", "0.6"}));
}

TEST(LineChart, fixed_axis_ends_are_respected) {
  Chart chart = chart_of({{"dice", {{2, 0.2}, {8, 0.6}, {12, 1.5}}}});
  chart.x_min = 0;
  chart.x_max = 10;
  chart.y_min = 0;
  chart.y_max = 1;
  const std::string svg = charts_svg({chart}, 1, "");
  ASSERT_EQ(polylines(svg).size(), 1u);
  // The point outside the ends is drawn where it maps, and clipped 3 pixels outside the plot.
  EXPECT_EQ(polylines(svg)[0], (Points{{102, 258}, {258, 154}, {362, -80}}));
  EXPECT_NE(svg.find("<rect x=\"47.0\" y=\"47.0\" width=\"266.0\" height=\"266.0\"/>"),
            std::string::npos)
      << svg;
  // Ticks 0, 5, 10 and 0, 0.5, 1, on the ends themselves.
  EXPECT_NE(svg.find("M50.0,310.0v5M180.0,310.0v5M310.0,310.0v5M45.0,310.0h5M45.0,180.0h5"
                     "M45.0,50.0h5\""),
            std::string::npos)
      << svg;
  for (const char* label : {">0</text>", ">5</text>", ">10</text>", ">0.5</text>", ">1</text>"})
    EXPECT_NE(svg.find(label), std::string::npos) << label;
}

TEST(LineChart, tick_labels_stay_short) {
  Chart chart = chart_of({{"lr", {{0, 0}, {100000, 0.001}}}});
  chart.x_min = chart.y_min = 0;
  chart.x_max = 200000;
  chart.y_max = 0.001;
  const std::string svg = charts_svg({chart}, 1, "");
  // x: 0, 1e5, 2e5 rather than 100000; y: 0, 5e-4 rather than 0.0005, and 0.001 as it is.
  for (const char* label :
       {">0</text>", ">1e5</text>", ">2e5</text>", ">5e-4</text>", ">0.001</text>"})
    EXPECT_NE(svg.find(label), std::string::npos) << label << "\n" << svg;
}

TEST(LineChart, free_axes_fit_the_data_with_headroom_and_a_flat_series_gets_a_span) {
  const std::vector<Points> flat =
      polylines(charts_svg({chart_of({{"lr", {{0, 0.5}, {1, 0.5}}}})}, 1, ""));
  ASSERT_EQ(flat.size(), 1u);
  // x from -0.05 to 1.05; y from 0.45 to 0.55, the line across the middle.
  EXPECT_EQ(flat[0], (Points{{61.8, 180}, {298.2, 180}}));
  const std::vector<Points> zero =
      polylines(charts_svg({chart_of({{"lr", {{0, 0}, {1, 0}}}})}, 1, ""));
  ASSERT_EQ(zero.size(), 1u);
  EXPECT_EQ(zero[0][0].second, 180);
  // Only the lower end fixed: the data's top plus 5% of the span.
  Chart chart = chart_of({{"loss", {{0, 0.5}, {1, 2}}}});
  chart.y_min = 0;
  const std::vector<Points> lines = polylines(charts_svg({chart}, 1, ""));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NEAR(lines[0][1].second, 310 - 260 * 2 / 2.1, 0.06);
}

TEST(LineChart, series_cycle_through_the_colours_and_named_ones_fill_the_legend) {
  std::vector<ChartSeries> series;
  for (int s = 0; s < 11; ++s)
    series.push_back({s == 3 ? "" : "s" + std::to_string(s), {{0, 0}, {1, 1}}});
  const std::string svg = charts_svg({chart_of(series)}, 1, "");
  const std::vector<std::string> colours = attributes(svg, "polyline", "stroke");
  EXPECT_EQ(colours, (std::vector<std::string>{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                               "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                               "#bcbd22", "#17becf", "#1f77b4"}));
  // One swatch per named series, in its colour; the unnamed fourth has none.
  const std::vector<std::string> swatches = attributes(svg, "path", "stroke");
  ASSERT_EQ(swatches.size(), 1u + 10u);  // the tick marks, then the legend
  EXPECT_EQ(swatches[1], "#1f77b4");
  EXPECT_EQ(swatches[3], "#2ca02c");
  EXPECT_EQ(swatches[4], "#9467bd");
  EXPECT_NE(svg.find(">s10</text>"), std::string::npos);
  EXPECT_EQ(svg.find(">s3</text>"), std::string::npos);
}

TEST(LineChart, a_legend_row_adds_18_pixels_to_every_cell) {
  const Chart unnamed = chart_of({{"", {{0, 0}, {1, 1}}}});
  const Chart named = chart_of({{"train", {{0, 0}, {1, 1}}}, {"val", {{0, 1}, {1, 0}}}});
  EXPECT_NE(charts_svg({unnamed}, 1, "").find("width=\"360\" height=\"360\""), std::string::npos);
  EXPECT_NE(charts_svg({named}, 1, "").find("width=\"360\" height=\"378\""), std::string::npos);
  EXPECT_NE(charts_svg({unnamed, unnamed, named}, 1, "").find("width=\"360\" height=\"1074\""),
            std::string::npos);
}

TEST(LineChart, charts_fill_the_grid_row_by_row) {
  Chart rising = chart_of({{"", {{0, 0}, {1, 1}}}});
  rising.x_min = rising.y_min = 0;
  rising.x_max = rising.y_max = 1;
  const std::string svg = charts_svg({rising, rising, rising}, 2, "grid");
  EXPECT_NE(svg.find("width=\"720\" height=\"690\""), std::string::npos) << svg;
  const std::vector<Points> lines = polylines(svg);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], (Points{{50, 310}, {310, 50}}));
  EXPECT_EQ(lines[1], (Points{{410, 310}, {670, 50}}));
  EXPECT_EQ(lines[2], (Points{{50, 640}, {310, 380}}));
  EXPECT_EQ(count_of(svg, "<clipPath id=\"plot-"), 3u);
  EXPECT_EQ(count_of(svg, "clip-path=\"url(#plot-2)\""), 1u);
  // Fewer charts than columns: only as wide as the charts; no columns at all: one.
  EXPECT_NE(charts_svg({rising}, 4, "").find("width=\"360\" height=\"360\""), std::string::npos);
  EXPECT_NE(charts_svg({rising, rising}, 0, "").find("width=\"360\" height=\"690\""),
            std::string::npos);
}

TEST(LineChart, an_empty_chart_is_a_frame_without_lines) {
  const std::string svg = charts_svg({chart_of({})}, 1, "nothing yet");
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("<rect x=\"50.0\" y=\"50.0\" width=\"260.0\" height=\"260.0\""),
            std::string::npos)
      << svg;
  EXPECT_EQ(svg.find("<polyline"), std::string::npos);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
}

// Some pixel within 2 of (x, y) is `colour` give or take 40 a channel (anti-aliasing).
bool coloured_near(const hds::test::Screenshot& shot, int x, int y, const uint8_t (&colour)[3]) {
  for (int dy = -2; dy <= 2; ++dy) {
    for (int dx = -2; dx <= 2; ++dx) {
      const uint8_t* p = shot.at(x + dx, y + dy);
      if (std::abs(p[0] - colour[0]) <= 40 && std::abs(p[1] - colour[1]) <= 40 &&
          std::abs(p[2] - colour[2]) <= 40)
        return true;
    }
  }
  return false;
}

bool white_around(const hds::test::Screenshot& shot, int x, int y) {
  for (int dy = -3; dy <= 3; ++dy) {
    for (int dx = -3; dx <= 3; ++dx) {
      const uint8_t* p = shot.at(x + dx, y + dy);
      if (std::min({p[0], p[1], p[2]}) < 240) return false;
    }
  }
  return true;
}

TEST(LineChartRendering, chromium_draws_each_series_in_its_colour_where_its_points_map) {
  const std::string browser = hds::test::chromium();
  if (browser.empty()) GTEST_SKIP() << "no Chromium (apt-get install chromium)";
  // Left: two flat lines at y 0.25 and 0.75 of a fixed 0..1 axis. Right, on a log axis from 1 to
  // 100: a loss falling from 100 to 1 and a flat line at 10, which only a log axis puts in the
  // middle.
  Chart linear = chart_of({{"train", {{0, 0.25}, {10, 0.25}}}, {"val", {{0, 0.75}, {10, 0.75}}}});
  linear.x_min = linear.y_min = 0;
  linear.x_max = 10;
  linear.y_max = 1;
  Chart log = chart_of({{"loss", {{0, 100}, {2, 1}}}, {"lr", {{0, 10}, {2, 10}}}});
  log.log_y = true;
  log.x_min = 0;
  log.x_max = 2;
  log.y_min = 1;
  log.y_max = 100;
  const std::string dir = hds::test::scratch_dir("line-chart-render");
  hds::test::write_text(dir + "/curves.svg", charts_svg({linear, log}, 2, "training"));
  // Two 360-pixel cells side by side, 30 + 330 + one legend row high.
  const hds::test::Screenshot shot =
      hds::test::chromium_screenshot(browser, dir + "/curves.svg", 720, 378);
  ASSERT_EQ(shot.width, 720) << shot.log;
  ASSERT_EQ(shot.height, 378);

  const uint8_t blue[3] = {0x1f, 0x77, 0xb4}, orange[3] = {0xff, 0x7f, 0x0e};
  // Plots at x 50..310 and 410..670, y 50..310.
  EXPECT_TRUE(coloured_near(shot, 180, 245, blue));    // train at 0.25
  EXPECT_TRUE(coloured_near(shot, 180, 115, orange));  // val at 0.75
  EXPECT_FALSE(coloured_near(shot, 180, 245, orange));
  EXPECT_TRUE(coloured_near(shot, 450, 180, orange));  // lr at 10: the log axis's middle
  EXPECT_TRUE(coloured_near(shot, 475, 115, blue));    // loss at x 0.5: 10^1.5
  EXPECT_TRUE(white_around(shot, 180, 180));           // between train and val
  EXPECT_TRUE(white_around(shot, 630, 100));           // above the loss, below nothing
  EXPECT_TRUE(white_around(shot, 450, 286));           // where a linear axis would put lr
  // The legends under the plots: a swatch per series, 75 (train) and 68 (loss) pixels apart.
  EXPECT_TRUE(coloured_near(shot, 60, 369, blue));
  EXPECT_TRUE(coloured_near(shot, 135, 369, orange));
  EXPECT_TRUE(coloured_near(shot, 420, 369, blue));
  EXPECT_TRUE(coloured_near(shot, 488, 369, orange));
}

}  // namespace
}  // namespace hds::scoring
