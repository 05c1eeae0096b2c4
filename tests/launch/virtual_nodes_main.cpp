// hds-virtual-nodes: the MultiNode tests' nodes (virtual_nodes.h) for a command run by hand or by
// a benchmark: makes NODES nodes with their files under DIR (DIR and each SHARED folder seen at
// their own paths on every node), runs COMMAND on node1 with Open MPI's rsh agent set to reach
// the others (`mpirun -H node1:1,node2:1 ...` works as on a cluster), then removes the nodes.
// Exits with the command's exit code. Needs root and a kernel that allows namespaces.
//
//   hds-virtual-nodes DIR NODES [SHARED ...] -- COMMAND [ARGUMENTS ...]
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "hds/launch/process.h"
#include "virtual_nodes.h"

int main(int argc, char** argv) {
  using hds::launch::testing::VirtualNodes;
  std::vector<std::string> arguments(argv + 1, argv + argc);
  size_t separator = 0;
  while (separator < arguments.size() && arguments[separator] != "--") ++separator;
  if (separator < 2 || separator + 1 >= arguments.size()) {
    std::cerr << "usage: hds-virtual-nodes DIR NODES [SHARED ...] -- COMMAND [ARGUMENTS ...]\n";
    return 2;
  }
  if (const std::string why = VirtualNodes::unavailable_reason(); !why.empty()) {
    std::cerr << "hds-virtual-nodes: " << why << "\n";
    return 1;
  }
  try {
    const int count = std::stoi(arguments[1]);
    const std::vector<std::string> shared(arguments.begin() + 2, arguments.begin() + separator);
    const VirtualNodes nodes(arguments[0], count, shared);
    std::vector<std::string> command = {"/usr/bin/env",
                                        "OMPI_MCA_plm_rsh_agent=" + nodes.rsh_agent()};
    command.insert(command.end(), arguments.begin() + separator + 1, arguments.end());
    hds::launch::SpawnOptions options;
    options.own_process_group = false;  // Ctrl-C reaches it as well
    hds::launch::Process run = hds::launch::Process::spawn(nodes.on(0, command), options);
    while (!run.wait_for(3600)) {
    }
    return hds::launch::exit_code_of(run.wait_status());
  } catch (const std::exception& error) {
    std::cerr << "hds-virtual-nodes: " << error.what() << "\n";
    return 1;
  }
}
