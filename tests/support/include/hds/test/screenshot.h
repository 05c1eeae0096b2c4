// Rendering tests: Debian's Chromium draws a file headless and its PNG screenshot is read back as
// RGB pixels. An includer links PNG::PNG.
#pragma once

#include <png.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "hds/test/files.h"

namespace hds::test {

struct Screenshot {
  int width = 0;  // 0: no image
  int height = 0;
  std::vector<uint8_t> rgb;
  std::string log;  // what Chromium printed, for a failing test's message
  const uint8_t* at(int x, int y) const { return &rgb[3 * (static_cast<size_t>(y) * width + x)]; }
};

// The PNG at `path` as RGB; width 0 when it cannot be read.
inline Screenshot read_rgb_png(const std::string& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  Screenshot shot;
  if (!png_image_begin_read_from_file(&image, path.c_str())) return shot;
  image.format = PNG_FORMAT_RGB;
  shot.rgb.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, shot.rgb.data(), 0, nullptr)) return {};
  shot.width = static_cast<int>(image.width);
  shot.height = static_cast<int>(image.height);
  return shot;
}

// Debian's Chromium, or "" where it is not installed (a rendering test then skips).
inline std::string chromium() {
  for (const char* candidate : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (std::system((std::string("test -x ") + candidate).c_str()) == 0) return candidate;
  }
  return "";
}

// What `browser` shows of the file `page` (an absolute path) in a `width` x `height` window,
// saved beside it as page.png; width 0 when Chromium fails, which `log` then explains.
inline Screenshot chromium_screenshot(const std::string& browser, const std::string& page,
                                      int width, int height) {
  const std::string png = page + ".png", log = page + ".log";
  const std::string command = "timeout 120 " + browser +
                              " --headless --no-sandbox --disable-gpu --hide-scrollbars "
                              "--window-size=" +
                              std::to_string(width) + "," + std::to_string(height) +
                              " --screenshot=" + png + " file://" + page + " > " + log + " 2>&1";
  const int status = std::system(command.c_str());
  Screenshot shot = status == 0 ? read_rgb_png(png) : Screenshot{};
  shot.log = "chromium: exit status " + std::to_string(status) + "\n" + read_text(log);
  return shot;
}

}  // namespace hds::test
