#include "hds/scoring/line_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iomanip>
#include <sstream>

namespace hds::scoring {
namespace {

// The layout of line_chart.h, in pixels.
constexpr double kTitleBand = 30;
constexpr double kCellWidth = 360;
constexpr double kCellHeight = 330;  // without a legend
constexpr double kPlotLeft = 50;
constexpr double kPlotTop = 20;
constexpr double kPlotSize = 260;
constexpr double kLegendRow = 18;
constexpr double kClipSlack = 3;  // a line along an axis end stays whole
constexpr double kSwatch = 20;
constexpr double kCharWidth = 7;  // a generous average for 12-pixel sans-serif

// matplotlib's "tab10", so that curve_svg keeps its blue.
const char* const kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr size_t kColourCount = sizeof kColours / sizeof kColours[0];

std::string xml_escaped(const std::string& text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      case '"':
        escaped += "&quot;";
        break;
      case '\'':
        escaped += "&apos;";
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

// %g, in a bare exponent form ("1e-6", "5e-4", not "1e-06" or "0.0005") where %g writes an
// exponent or the bare form is shorter than %g's 6 characters or more: a y tick's label must
// stay clear of the axis label beside it.
std::string tick_label(double value) {
  char plain[32];
  std::snprintf(plain, sizeof plain, "%g", value);
  const bool exponent = std::strchr(plain, 'e') != nullptr;
  if (!exponent && std::strlen(plain) <= 5) return plain;
  char scientific[32];
  std::snprintf(scientific, sizeof scientific, "%.5e", value);  // "5.00000e-04"
  const std::string text = scientific;
  const size_t e = text.find('e');
  std::string mantissa = text.substr(0, e);
  mantissa.erase(mantissa.find_last_not_of('0') + 1);
  if (mantissa.back() == '.') mantissa.pop_back();
  const std::string bare = mantissa + "e" + std::to_string(std::stoi(text.substr(e + 1)));
  return exponent || bare.size() < std::strlen(plain) ? bare : plain;
}

// The multiples of mantissa x 10^exponent in [low, high], or none when there are more than
// `most`. Each is i x mantissa scaled by the exact power of ten, so 3 x 0.2 reads 0.6.
std::optional<std::vector<double>> multiples(double low, double high, double mantissa, int exponent,
                                             double most) {
  const double scale = std::pow(10.0, std::abs(exponent));
  auto value = [&](double i) {
    return exponent >= 0 ? i * mantissa * scale : i * mantissa / scale;
  };
  const double step = value(1);
  const double slack = 1e-9 * step;  // a tick on an end despite rounding
  const double first = std::ceil((low - slack) / step), last = std::floor((high + slack) / step);
  if (last - first + 1 > most) return std::nullopt;
  std::vector<double> ticks;
  for (double i = first; i <= last; ++i) ticks.push_back(value(i) + 0.0);  // -0 reads 0
  return ticks;
}

double power_of_ten(double exponent) { return std::pow(10.0, exponent); }

// The ticks of a log axis from 10^low to 10^high: 3 to 5 powers of ten where the range holds
// them, every 2, 3, 5, 10, ... decades where it holds more, else 1, 2, 5 (or 1, 3) x 10^k, else
// nice_ticks of the values themselves (a range well under a decade).
std::vector<double> log_ticks(double low, double high) {
  constexpr double kSlack = 1e-9;
  std::vector<double> decades;
  for (double k = std::ceil(low - kSlack); k <= high + kSlack; ++k) decades.push_back(k);
  // Each of 1, 2, 3, 5 x 10^k decades is at most twice the one before, or 5 after 3 (6
  // multiples of 3 span 15, holding 3 of 5), so the first that gives at most 5 gives 3 or more.
  for (int exponent = 0; decades.size() > 5; ++exponent) {
    for (const double mantissa : {1.0, 2.0, 3.0, 5.0}) {
      if (std::optional<std::vector<double>> every = multiples(low, high, mantissa, exponent, 5)) {
        decades = *every;
        break;
      }
    }
  }
  if (decades.size() >= 3) {
    std::vector<double> ticks;
    for (const double k : decades) ticks.push_back(power_of_ten(k));
    return ticks;
  }
  for (const std::vector<double>& mantissas : {std::vector<double>{1, 2, 5}, {1, 3}}) {
    std::vector<double> ticks;
    for (double k = std::floor(low); k <= std::ceil(high); ++k) {
      for (const double mantissa : mantissas) {
        const double exponent = k + std::log10(mantissa);
        if (exponent >= low - kSlack && exponent <= high + kSlack)
          ticks.push_back(mantissa * power_of_ten(k));
      }
    }
    if (ticks.size() >= 3 && ticks.size() <= 5) return ticks;
  }
  std::vector<double> ticks = nice_ticks(power_of_ten(low), power_of_ten(high));
  ticks.erase(std::remove_if(ticks.begin(), ticks.end(), [](double tick) { return tick <= 0; }),
              ticks.end());
  return ticks;
}

// An axis's ends, in log10 of the values on a log axis.
struct Axis {
  double low = 0;
  double high = 1;
  bool log = false;

  double fraction(double value) const {
    return ((log ? std::log10(value) : value) - low) / (high - low);
  }
  std::vector<double> ticks() const { return log ? log_ticks(low, high) : nice_ticks(low, high); }
};

// The axis over `values` (already in log10 on a log axis) with the fixed ends that are set.
Axis axis_over(const std::vector<double>& values, std::optional<double> fixed_low,
               std::optional<double> fixed_high, bool log) {
  auto usable = [log](std::optional<double> end) -> std::optional<double> {
    if (!end || !std::isfinite(*end) || (log && *end <= 0)) return std::nullopt;
    return log ? std::log10(*end) : *end;
  };
  const std::optional<double> low_end = usable(fixed_low), high_end = usable(fixed_high);
  double data_low = 0, data_high = 1;
  if (!values.empty()) {
    const auto [smallest, largest] = std::minmax_element(values.begin(), values.end());
    data_low = *smallest;
    data_high = *largest;
  }
  Axis axis{low_end.value_or(data_low), high_end.value_or(data_high), log};
  if (axis.high > axis.low) {
    const double headroom = 0.05 * (axis.high - axis.low);
    if (!low_end) axis.low -= headroom;
    if (!high_end) axis.high += headroom;
    return axis;
  }
  // One value, or ends that leave no span: half a decade, a tenth of the value, or 1 each side
  // of the end that is fixed (of the value when neither is).
  const double anchor = low_end || !high_end ? axis.low : axis.high;
  const double half = log ? 0.5 : anchor != 0 ? 0.1 * std::abs(anchor) : 1;
  if (low_end) {
    axis.high = axis.low + 2 * half;
  } else if (high_end) {
    axis.low = axis.high - 2 * half;
  } else {
    axis.high = axis.low + half;
    axis.low -= half;
  }
  return axis;
}

bool drawable(const std::pair<double, double>& point, bool log_y) {
  return std::isfinite(point.first) && std::isfinite(point.second) && (!log_y || point.second > 0);
}

// Where a chart's named series sit in its legend: row, and offset from the plot's left.
struct LegendEntry {
  size_t series = 0;
  int row = 0;
  double x = 0;
};

std::vector<LegendEntry> legend_of(const Chart& chart) {
  std::vector<LegendEntry> entries;
  double x = 0;
  int row = 0;
  for (size_t s = 0; s < chart.series.size(); ++s) {
    const std::string& name = chart.series[s].name;
    if (name.empty()) continue;
    const double width = kSwatch + 5 + kCharWidth * static_cast<double>(name.size());
    if (x > 0 && x + width > kPlotSize) {
      ++row;
      x = 0;
    }
    entries.push_back({s, row, x});
    x += width + 15;
  }
  return entries;
}

int legend_rows(const std::vector<LegendEntry>& legend) {
  return legend.empty() ? 0 : legend.back().row + 1;
}

// One chart in the cell whose top left corner is (left, top); `id` names its clip path.
void write_chart(std::ostringstream& svg, const Chart& chart,
                 const std::vector<LegendEntry>& legend, double left, double top, size_t id) {
  const double plot_left = left + kPlotLeft, plot_top = top + kPlotTop;
  const double plot_bottom = plot_top + kPlotSize;
  const double middle_x = plot_left + kPlotSize / 2, middle_y = plot_top + kPlotSize / 2;
  std::vector<double> xs, ys;
  for (const ChartSeries& series : chart.series) {
    for (const auto& point : series.points) {
      if (!drawable(point, chart.log_y)) continue;
      xs.push_back(point.first);
      ys.push_back(chart.log_y ? std::log10(point.second) : point.second);
    }
  }
  const Axis x_axis = axis_over(xs, chart.x_min, chart.x_max, false);
  const Axis y_axis = axis_over(ys, chart.y_min, chart.y_max, chart.log_y);
  // A point far outside fixed ends is drawn at most a million pixels out (the clip hides it, and
  // the line's direction at the frame barely changes), so that the document holds no "inf".
  auto pixel = [](double at) { return std::isnan(at) ? at : std::clamp(at, -1e6, 1e6); };
  auto x_of = [&](double x) { return pixel(plot_left + kPlotSize * x_axis.fraction(x)); };
  auto y_of = [&](double y) { return pixel(plot_bottom - kPlotSize * y_axis.fraction(y)); };
  // NaN only where the data's span overflows a double: left out like a non-finite point.
  auto shown = [&](const std::pair<double, double>& point) {
    return drawable(point, chart.log_y) && !std::isnan(x_of(point.first)) &&
           !std::isnan(y_of(point.second));
  };

  svg << "<clipPath id=\"plot-" << id << "\"><rect x=\"" << plot_left - kClipSlack << "\" y=\""
      << plot_top - kClipSlack << "\" width=\"" << kPlotSize + 2 * kClipSlack << "\" height=\""
      << kPlotSize + 2 * kClipSlack << "\"/></clipPath>\n";
  if (!chart.title.empty()) {
    svg << "<text x=\"" << middle_x << "\" y=\"" << plot_top - 6 << "\" text-anchor=\"middle\">"
        << xml_escaped(chart.title) << "</text>\n";
  }
  svg << "<rect x=\"" << plot_left << "\" y=\"" << plot_top << "\" width=\"" << kPlotSize
      << "\" height=\"" << kPlotSize << "\" fill=\"none\" stroke=\"black\"/>\n";

  // Ticks point outwards, so nothing but the lines is drawn inside the plot.
  std::ostringstream marks, labels;
  marks << std::fixed << std::setprecision(1);
  labels << std::fixed << std::setprecision(1);
  for (const double tick : x_axis.ticks()) {
    const double x = x_of(tick);
    marks << "M" << x << "," << plot_bottom << "v5";
    labels << "<text x=\"" << x << "\" y=\"" << plot_bottom + 17 << "\" text-anchor=\"middle\">"
           << tick_label(tick) << "</text>\n";
  }
  for (const double tick : y_axis.ticks()) {
    const double y = y_of(tick);
    marks << "M" << plot_left - 5 << "," << y << "h5";
    labels << "<text x=\"" << plot_left - 7 << "\" y=\"" << y + 3.5 << "\" text-anchor=\"end\">"
           << tick_label(tick) << "</text>\n";
  }
  svg << "<path d=\"" << marks.str() << "\" stroke=\"black\"/>\n"
      << "<g font-size=\"10\">\n"
      << labels.str() << "</g>\n"
      << "<text x=\"" << middle_x << "\" y=\"" << plot_bottom + 38 << "\" text-anchor=\"middle\">"
      << xml_escaped(chart.x_label) << "</text>\n"
      << "<text x=\"" << left + 12 << "\" y=\"" << middle_y
      << "\" text-anchor=\"middle\" transform=\"rotate(-90 " << left + 12 << " " << middle_y
      << ")\">" << xml_escaped(chart.y_label) << "</text>\n";

  // Each run of drawable points is one polyline; a lone point, a dot.
  svg << "<g clip-path=\"url(#plot-" << id << ")\">\n";
  for (size_t s = 0; s < chart.series.size(); ++s) {
    const char* colour = kColours[s % kColourCount];
    const auto& points = chart.series[s].points;
    for (size_t begin = 0; begin < points.size();) {
      if (!shown(points[begin])) {
        ++begin;
        continue;
      }
      size_t end = begin;
      while (end < points.size() && shown(points[end])) ++end;
      if (end - begin == 1) {
        svg << "<circle cx=\"" << x_of(points[begin].first) << "\" cy=\""
            << y_of(points[begin].second) << "\" r=\"2\" fill=\"" << colour << "\"/>\n";
      } else {
        svg << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\" points=\"";
        for (size_t i = begin; i < end; ++i)
          svg << x_of(points[i].first) << "," << y_of(points[i].second) << " ";
        svg << "\"/>\n";
      }
      begin = end;
    }
  }
  svg << "</g>\n";

  for (const LegendEntry& entry : legend) {
    const double x = plot_left + entry.x;
    const double y = plot_bottom + 50 + kLegendRow * entry.row + kLegendRow / 2;
    svg << "<path d=\"M" << x << "," << y << "h" << kSwatch << "\" stroke=\""
        << kColours[entry.series % kColourCount] << "\" stroke-width=\"2\"/>\n"
        << "<text x=\"" << x + kSwatch + 5 << "\" y=\"" << y + 4 << "\">"
        << xml_escaped(chart.series[entry.series].name) << "</text>\n";
  }
}

}  // namespace

std::vector<double> nice_ticks(double low, double high) {
  if (!std::isfinite(low) || !std::isfinite(high)) return {};
  if (low > high) std::swap(low, high);
  if (low == high) return {low};
  // Upwards from a tenth of the span's power of ten (10 ticks or more). Where 1, 2, 5 skip from
  // 6 ticks to 2, 2.5 cannot: 6 multiples of 2 span 10, which holds 4 of 2.5; 6 of 2.5 hold 3
  // of 5; and each other step is twice the one before.
  const int magnitude = static_cast<int>(std::floor(std::log10(high - low)));
  for (const std::vector<double>& mantissas : {std::vector<double>{1, 2, 5}, {1, 2, 2.5, 5}}) {
    for (int exponent = magnitude - 1; exponent <= magnitude + 1; ++exponent) {
      for (const double mantissa : mantissas) {
        std::optional<std::vector<double>> ticks = multiples(low, high, mantissa, exponent, 5);
        if (ticks && ticks->size() >= 3) return *ticks;
      }
    }
  }
  return {low, high};  // not reached: the second pass always finds 3 to 5
}

std::string charts_svg(const std::vector<Chart>& charts, int columns, const std::string& title) {
  const size_t per_row =
      std::max<size_t>(1, std::min(charts.size(), static_cast<size_t>(std::max(columns, 1))));
  const size_t rows = (charts.size() + per_row - 1) / per_row;
  std::vector<std::vector<LegendEntry>> legends;
  int most_legend_rows = 0;
  for (const Chart& chart : charts) {
    legends.push_back(legend_of(chart));
    most_legend_rows = std::max(most_legend_rows, legend_rows(legends.back()));
  }
  const double cell_height = kCellHeight + kLegendRow * most_legend_rows;
  const double width = kCellWidth * static_cast<double>(per_row);
  const double height = kTitleBand + cell_height * static_cast<double>(rows);

  std::ostringstream svg;
  svg << std::fixed << std::setprecision(0) << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\""
      << width << "\" height=\"" << height << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << std::setprecision(1) << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << width / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">"
      << xml_escaped(title) << "</text>\n";
  for (size_t i = 0; i < charts.size(); ++i) {
    const double left = kCellWidth * static_cast<double>(i % per_row);
    const double top = kTitleBand + cell_height * static_cast<double>(i / per_row);
    write_chart(svg, charts[i], legends[i], left, top, i);
  }
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace hds::scoring
