// Whole lines out of a terminal's byte stream (what trainer.log keeps of the progress bar), and
// which file descriptors count as a terminal that redraws in place.
#include "hds/common/terminal.h"

#include <gtest/gtest.h>
#include <pty.h>
#include <unistd.h>

#include <cstdlib>

namespace hds::common {
namespace {

TEST(Terminal, redraws_are_dropped_and_whole_lines_kept) {
  std::string pending;
  // A bar drawn twice, a line printed over it, the bar again, then a final line.
  const std::string stream =
      "data: 8 films\n\r\033[Kepoch 1/2 [##..] 10%\r\033[Kepoch 1/2 [###.] 20%"
      "\r\033[Kvalidation epoch 1: dice 0.5\n\r\033[Kepoch 2/2 [####] 100%\r\033[Ksummary: done\n";
  EXPECT_EQ(complete_lines_without_redraws(pending, stream),
            "data: 8 films\nvalidation epoch 1: dice 0.5\nsummary: done\n");
  EXPECT_EQ(pending, "");
}

TEST(Terminal, a_line_split_across_reads_comes_out_once_complete) {
  std::string pending;
  EXPECT_EQ(complete_lines_without_redraws(pending, "epoch 1/2 st"), "");
  EXPECT_EQ(pending, "epoch 1/2 st");
  EXPECT_EQ(complete_lines_without_redraws(pending, "ep 1/4 loss 3\nnext"),
            "epoch 1/2 step 1/4 loss 3\n");
  EXPECT_EQ(pending, "next");
  // A bar still being drawn when the stream ends is not a line.
  EXPECT_EQ(complete_lines_without_redraws(pending, "\r\033[Kepoch 2/2 [#"), "");
}

TEST(Terminal, a_pipe_is_not_a_terminal_a_pseudo_terminal_is_unless_term_is_dumb) {
  int ends[2];
  ASSERT_EQ(pipe(ends), 0);
  EXPECT_FALSE(redraws_in_place(ends[1]));
  close(ends[0]);
  close(ends[1]);
  int master = -1, slave = -1;
  ASSERT_EQ(openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  const char* term = std::getenv("TERM");
  const std::string saved = term ? term : "";
  setenv("TERM", "xterm", 1);
  EXPECT_TRUE(redraws_in_place(slave));
  setenv("TERM", "dumb", 1);
  EXPECT_FALSE(redraws_in_place(slave));
  if (term) {
    setenv("TERM", saved.c_str(), 1);
  } else {
    unsetenv("TERM");
  }
  close(master);
  close(slave);
}

}  // namespace
}  // namespace hds::common
