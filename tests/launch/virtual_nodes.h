// Nodes of a cluster on one machine, for tests of multi-node jobs. Each node is a process holding
// its own network, UTS and mount namespaces: host name nodeK, address 10.77.0.K/24 on a bridge
// that lives in a namespace of its own (the "switch"), a private /tmp and /dev/shm as a real
// node has, and /etc/hosts naming every node. The folders given as shared (the cluster's file
// system: the test's scratch folder, the build tree) are at the same paths on every node.
// Programs run on a node through nsenter (enter()); Open MPI reaches a node the same way
// (rsh_agent()). Everything goes when the object does: the namespaces die with their holders.
#pragma once

#include <string>
#include <vector>

#include "hds/launch/process.h"

namespace hds::launch::testing {

class VirtualNodes {
 public:
  // Why no such nodes can be made here ("" when they can): not root, a missing program
  // (unshare, nsenter, ip), or a kernel that refuses the namespaces.
  static std::string unavailable_reason();

  // `count` nodes with their files under `dir` (node K's /tmp is <dir>/nodeK/tmp); `shared`
  // folders (absolute) are seen at their own paths on every node, `dir` among them. Throws
  // LaunchError naming the step that failed.
  VirtualNodes(const std::string& dir, int count, const std::vector<std::string>& shared);
  ~VirtualNodes();
  VirtualNodes(const VirtualNodes&) = delete;
  VirtualNodes& operator=(const VirtualNodes&) = delete;

  int size() const { return static_cast<int>(holders_.size()); }
  // "node1" for node 0.
  static std::string name(int node);
  static std::string address(int node);
  // The prefix that runs a command on `node`: nsenter into its namespaces, working directory /.
  std::vector<std::string> enter(int node) const;
  // `argv` run on `node`.
  std::vector<std::string> on(int node, const std::vector<std::string>& argv) const;
  // How this machine sees `path` as `node` sees it (its private /tmp and /dev/shm included).
  std::string path_on(int node, const std::string& path) const;
  // A program Open MPI's rsh launcher can use (plm_rsh_agent): "AGENT [options] HOST COMMAND".
  const std::string& rsh_agent() const { return rsh_agent_; }

 private:
  // A process in new namespaces of `kinds` ("--net --uts --mount") that sleeps until killed.
  Process start_holder(const std::vector<std::string>& kinds);
  // Runs `script` (sh) on the process `pid`'s namespaces; throws with its output on failure.
  void run_in(pid_t pid, const std::vector<std::string>& kinds, const std::string& step,
              const std::string& script) const;

  std::string dir_;
  std::string nsenter_;
  Process switch_;
  std::vector<Process> holders_;
  std::string rsh_agent_;
};

}  // namespace hds::launch::testing
