#include "virtual_nodes.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch_test_support.h"

namespace hds::launch::testing {
namespace {

constexpr double kStepSeconds = 20;  // one setup command (mounts, links, addresses)
const std::vector<std::string> kNodeNamespaces = {"--net", "--uts", "--mount"};

// The namespace of kind `kind` ("net", "mnt") that `pid` is in, as /proc names it.
std::string namespace_of(pid_t pid, const std::string& kind) {
  std::error_code error;
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/" + kind, error).string();
}

// The nsenter options for the namespaces unshare's options `kinds` made.
std::vector<std::string> nsenter_options(const std::vector<std::string>& kinds) {
  std::vector<std::string> options;
  for (const std::string& kind : kinds) {
    options.push_back(kind == "--net" ? "-n" : kind == "--uts" ? "-u" : "-m");
  }
  return options;
}

}  // namespace

std::string VirtualNodes::unavailable_reason() {
  if (geteuid() != 0) return "needs root (network and mount namespaces)";
  for (const std::string program : {"unshare", "nsenter", "ip"}) {
    if (installed_program(program).empty()) {
      return program + " is not installed (apt-get install util-linux iproute2)";
    }
  }
  const CommandResult trial =
      run_to_end({installed_program("unshare"), "--net", "--uts", "--mount", "/bin/true"}, 10);
  if (!trial.finished || trial.status != 0) {
    return "the kernel refuses new network, UTS and mount namespaces: unshare says " + trial.output;
  }
  return "";
}

VirtualNodes::VirtualNodes(const std::string& dir, int count,
                           const std::vector<std::string>& shared)
    : dir_(dir), nsenter_(installed_program("nsenter")) {
  std::string hosts = "127.0.0.1 localhost\n";
  for (int node = 0; node < count; ++node) hosts += address(node) + " " + name(node) + "\n";
  write_text(dir + "/hosts", hosts);

  switch_ = start_holder({"--net"});
  run_in(switch_.pid(), {"--net"}, "the switch",
         "ip link add br0 type bridge && ip link set br0 up && ip link set lo up");

  std::vector<std::string> visible = shared;
  visible.push_back(dir);
  for (int node = 0; node < count; ++node) {
    holders_.push_back(start_holder(kNodeNamespaces));
    const std::string pid = std::to_string(holders_.back().pid());
    const std::string node_tmp = dir + "/" + name(node) + "/tmp";
    fs::create_directories(node_tmp);
    fs::permissions(node_tmp, fs::perms::all | fs::perms::sticky_bit);
    // The shared folders under /tmp are bound into the node's own /tmp before it replaces /tmp.
    std::string binds;
    for (const std::string& folder : visible) {
      if (folder.rfind("/tmp/", 0) != 0) continue;
      const std::string point = node_tmp + folder.substr(4);
      binds += "mkdir -p " + shell_quote(point) + " && mount --bind " + shell_quote(folder) + " " +
               shell_quote(point) + " && ";
    }
    run_in(holders_.back().pid(), kNodeNamespaces, name(node) + "'s namespaces",
           "hostname " + name(node) + " && mount --make-rprivate / && " + binds + "mount --rbind " +
               shell_quote(node_tmp) + " /tmp && " +
               "mount -t tmpfs -o size=512m,mode=1777 tmpfs /dev/shm && mount --bind " +
               shell_quote(dir + "/hosts") + " /etc/hosts && ip link set lo up");
    // A cable from the switch to the node: "nK" on the bridge, "eth0" on the node.
    const std::string port = "n" + std::to_string(node + 1);
    run_in(switch_.pid(), {"--net"}, "the cable to " + name(node),
           "ip link add " + port + " type veth peer name eth0 netns " + pid + " && ip link set " +
               port + " master br0 && ip link set " + port + " up");
    run_in(holders_.back().pid(), {"--net"}, name(node) + "'s address",
           "ip addr add " + address(node) + "/24 dev eth0 && ip link set eth0 up");
  }

  // Open MPI calls "AGENT [ssh options] HOST COMMAND": the command runs on HOST's namespaces.
  rsh_agent_ = dir + "/rsh-agent";
  std::string agent =
      "#!/bin/sh\n"
      "# Open MPI's rsh agent for these test nodes: \"rsh-agent [options] HOST COMMAND...\".\n"
      "while [ \"${1#-}\" != \"$1\" ]; do shift; done\n"
      "host=$1; shift\n"
      "case $host in\n";
  for (int node = 0; node < count; ++node) {
    agent += "  " + name(node) + "|" + address(node) +
             ") pid=" + std::to_string(holders_[node].pid()) + " ;;\n";
  }
  agent += "  *) echo \"rsh-agent: no test node $host\" >&2; exit 255 ;;\nesac\nexec " + nsenter_ +
           " -t \"$pid\" -n -u -m -- /bin/sh -c \"$*\"\n";
  write_text(rsh_agent_, agent);
  ::chmod(rsh_agent_.c_str(), 0755);
}

VirtualNodes::~VirtualNodes() {
  for (Process& holder : holders_) holder.signal(SIGKILL);
  switch_.signal(SIGKILL);
  for (Process& holder : holders_) holder.wait_for(kKillSeconds);
  switch_.wait_for(kKillSeconds);
}

std::string VirtualNodes::name(int node) { return "node" + std::to_string(node + 1); }

std::string VirtualNodes::address(int node) { return "10.77.0." + std::to_string(node + 1); }

std::vector<std::string> VirtualNodes::enter(int node) const {
  return {nsenter_, "-t", std::to_string(holders_.at(node).pid()), "-n", "-u", "-m", "--"};
}

std::vector<std::string> VirtualNodes::on(int node, const std::vector<std::string>& argv) const {
  std::vector<std::string> command = enter(node);
  command.insert(command.end(), argv.begin(), argv.end());
  return command;
}

std::string VirtualNodes::path_on(int node, const std::string& path) const {
  return "/proc/" + std::to_string(holders_.at(node).pid()) + "/root" + path;
}

Process VirtualNodes::start_holder(const std::vector<std::string>& kinds) {
  std::vector<std::string> argv = {installed_program("unshare")};
  argv.insert(argv.end(), kinds.begin(), kinds.end());
  argv.insert(argv.end(), {installed_program("sleep"), "infinity"});
  SpawnOptions options;
  options.output_file = dir_ + "/holders.log";
  options.parent_death_signal = SIGKILL;  // a test killed outright leaves no namespaces behind
  Process holder = Process::spawn(argv, options);
  // unshare enters the namespaces, then becomes sleep.
  const std::string ours = namespace_of(getpid(), "net");
  if (!eventually(
          [&] {
            return namespace_of(holder.pid(), "net") != ours &&
                   command_name(holder.pid()) == "sleep";
          },
          kStepSeconds)) {
    throw LaunchError("unshare " + std::to_string(holder.pid()) + " made no namespaces; see " +
                      options.output_file);
  }
  return holder;
}

void VirtualNodes::run_in(pid_t pid, const std::vector<std::string>& kinds, const std::string& step,
                          const std::string& script) const {
  std::vector<std::string> argv = {nsenter_, "-t", std::to_string(pid)};
  for (const std::string& option : nsenter_options(kinds)) argv.push_back(option);
  argv.insert(argv.end(), {"--", "/bin/sh", "-c", "PATH=/usr/sbin:/sbin:$PATH; " + script});
  const CommandResult result = run_to_end(argv, kStepSeconds);
  if (!result.finished || result.status != 0) {
    throw LaunchError("setting up " + step + " failed (" + describe_wait_status(result.status) +
                      "): " + script + "\n" + result.output);
  }
}

}  // namespace hds::launch::testing
