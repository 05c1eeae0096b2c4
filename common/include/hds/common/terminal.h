// Terminals: whether output goes to a person's terminal, where progress may be redrawn in place
// (a bar), or to a file or pipe (logs, Slurm), which get whole lines. One rule for the trainer
// and the launcher.
#pragma once

#include <string>

namespace hds::common {

// `fd` is a terminal and TERM is not "dumb" (an editor's or CI's pseudo-terminal without cursor
// control says dumb).
bool redraws_in_place(int fd);

// Appends `data` to `pending` and returns the complete lines in it, without what a progress bar
// redrew in place: text ended by a carriage return instead of a newline, and the ANSI "erase
// line" that starts a redraw. A bar still being drawn stays in `pending`. For logs of output
// meant for a terminal.
std::string complete_lines_without_redraws(std::string& pending, const std::string& data);

}  // namespace hds::common
