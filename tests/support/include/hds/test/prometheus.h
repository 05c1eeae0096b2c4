// Prometheus in tests: free loopback ports, a plain HTTP GET over a real TCP socket, the text
// format parsed into samples, and programs looked up in PATH (promtool).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "hds/test/files.h"  // find_program

namespace hds::test {

// A TCP socket bound to 127.0.0.1:`port` (0: any free port); -1 when the port is taken.
inline int bind_loopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

inline int port_of(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

// The lowest port the kernel hands out to outgoing connections (ip_local_port_range), or 32768.
inline int first_ephemeral_port() {
  int low = 0;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low;
  return low > 0 ? low : 32768;
}

// The first of `count` consecutive loopback ports that were free a moment ago, below the
// ephemeral range: a port the kernel may give any outgoing connection (an srun talking to
// slurmd, a rank to PMIx) could be taken by one before the test's server binds it. Tests run side
// by side: each asks for ports of its own, from a random start.
inline int free_ports(int count = 1) {
  static std::mt19937 random(static_cast<unsigned>(getpid()) ^ std::random_device{}());
  constexpr int kLowest = 10000;
  const int highest = first_ephemeral_port() - count;
  if (highest <= kLowest) return -1;
  std::uniform_int_distribution<int> start(kLowest, highest);
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int first = start(random);
    std::vector<int> held;
    bool all_free = true;
    for (int k = 0; k < count && all_free; ++k) {
      const int fd = bind_loopback(first + k);
      all_free = fd >= 0;
      if (fd >= 0) held.push_back(fd);
    }
    for (int fd : held) close(fd);
    if (all_free) return first;
  }
  return -1;
}

struct HttpResponse {
  int status = 0;  // 0: no connection or no answer
  std::string body;
};

// GET http://127.0.0.1:`port``target` (HTTP/1.0: the server closes the connection after the
// answer, so the body is everything up to the end).
inline HttpResponse http_get(int port, const std::string& target) {
  HttpResponse response;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return response;
  }
  const std::string request = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return response;
  }
  std::string answer;
  char buffer[8192];
  for (ssize_t n; (n = read(fd, buffer, sizeof buffer)) > 0;) answer.append(buffer, n);
  close(fd);
  const size_t header_end = answer.find("\r\n\r\n");
  if (answer.rfind("HTTP/", 0) != 0 || header_end == std::string::npos) return response;
  response.status = std::atoi(answer.c_str() + answer.find(' ') + 1);
  response.body = answer.substr(header_end + 4);
  return response;
}

// One sample of the Prometheus text format: name{labels} value.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// The samples of an exposition (comments skipped). Label values here hold no escapes.
inline std::vector<Sample> parse_exposition(const std::string& text) {
  std::vector<Sample> samples;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    Sample sample;
    size_t at = line.find_first_of("{ ");
    sample.name = line.substr(0, at);
    if (line[at] == '{') {
      const size_t close = line.find('}', at);
      std::string labels = line.substr(at + 1, close - at - 1);
      for (size_t start = 0; start < labels.size();) {
        const size_t equals = labels.find('=', start);
        const size_t value_end = labels.find('"', equals + 2);
        sample.labels[labels.substr(start, equals - start)] =
            labels.substr(equals + 2, value_end - equals - 2);
        start = value_end + 2;  // past the quote and the comma
      }
      at = close + 1;
    }
    sample.value = std::strtod(line.c_str() + at + 1, nullptr);
    samples.push_back(std::move(sample));
  }
  return samples;
}

// The value of the sample named `name` whose labels include `labels`, if there is one.
inline std::optional<double> value_of(const std::vector<Sample>& samples, const std::string& name,
                                      const std::map<std::string, std::string>& labels = {}) {
  for (const Sample& sample : samples) {
    if (sample.name != name) continue;
    bool match = true;
    for (const auto& [key, value] : labels) {
      const auto found = sample.labels.find(key);
      match &= found != sample.labels.end() && found->second == value;
    }
    if (match) return sample.value;
  }
  return std::nullopt;
}

}  // namespace hds::test
