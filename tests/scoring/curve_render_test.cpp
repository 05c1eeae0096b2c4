// The ROC / FROC curves as a person sees them: Debian's Chromium renders curve_svg's document
// headless, and the screenshot holds the curve's colour where the points map and nowhere else.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "hds/scoring/evaluation_report.h"
#include "hds/test/files.h"
#include "hds/test/screenshot.h"

namespace hds::scoring {
namespace {

using hds::test::chromium;
using hds::test::chromium_screenshot;
using hds::test::Screenshot;

// The curve's stroke, #1f77b4, allowing for anti-aliasing.
bool curve_coloured(const uint8_t* p) { return p[2] > 120 && p[0] < 100 && p[2] > p[0] + 60; }

TEST(CurveRendering, chromium_draws_the_curve_where_its_points_map) {
  const std::string browser = chromium();
  if (browser.empty()) GTEST_SKIP() << "no Chromium (apt-get install chromium)";
  const std::string dir = hds::test::scratch_dir("curve-render");
  // A ROC through (0, 0), (0.5, 1), (1, 1): plot corners at 50 and 310 pixels.
  hds::test::write_text(dir + "/roc.svg", curve_svg({{0, 0, 1}, {0.5, 1, 0.5}, {1, 1, 0}}, "ROC",
                                                    "false-positive rate", "TPR", 1));
  const Screenshot shot = chromium_screenshot(browser, dir + "/roc.svg", 360, 360);
  ASSERT_EQ(shot.width, 360) << shot.log;
  ASSERT_EQ(shot.height, 360);

  int coloured = 0, min_x = shot.width, max_x = 0, min_y = shot.height, max_y = 0;
  for (int y = 0; y < shot.height; ++y) {
    for (int x = 0; x < shot.width; ++x) {
      if (!curve_coloured(shot.at(x, y))) continue;
      ++coloured;
      min_x = std::min(min_x, x);
      max_x = std::max(max_x, x);
      min_y = std::min(min_y, y);
      max_y = std::max(max_y, y);
    }
  }
  // Two segments of about 290 and 260 pixels, 2 pixels wide.
  EXPECT_GT(coloured, 500);
  EXPECT_NEAR(min_x, 50, 3);
  EXPECT_NEAR(max_x, 310, 3);
  EXPECT_NEAR(min_y, 50, 3);
  EXPECT_NEAR(max_y, 310, 3);
  // On the curve: the top segment's middle and the rising segment's middle; off it: the plot's
  // lower right, which a ROC above the diagonal leaves white.
  EXPECT_TRUE(curve_coloured(shot.at(245, 50)) || curve_coloured(shot.at(245, 51)));
  EXPECT_TRUE(curve_coloured(shot.at(115, 180)) || curve_coloured(shot.at(116, 180)));
  const uint8_t* empty = shot.at(280, 280);
  EXPECT_GT(empty[0] + empty[1] + empty[2], 3 * 240);
}

}  // namespace
}  // namespace hds::scoring
