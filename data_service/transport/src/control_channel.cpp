// Framing and sockets of the control channel.
#include "hds/transport/control_channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

namespace hds::transport {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string system_error(const std::string& what) { return what + ": " + std::strerror(errno); }

sockaddr_un socket_address(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof address.sun_path) {
    throw ControlError("socket path \"" + path + "\": must be 1 to " +
                       std::to_string(sizeof address.sun_path - 1) + " bytes long");
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

// Milliseconds left until `deadline` for poll(); -1 (for ever) without one.
int poll_timeout_ms(const Clock::time_point* deadline) {
  if (deadline == nullptr) return -1;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
  return static_cast<int>(std::max<long long>(left.count(), 0));
}

// Connects to `path`; -1 with errno set when nobody listens there.
int try_connect(const std::string& path) {
  const sockaddr_un address = socket_address(path);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ControlError(system_error("socket"));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int error = errno;
    ::close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Framing.

std::string encode_control_frame(const google::protobuf::MessageLite& message,
                                 const std::string& peer) {
  const size_t size = message.ByteSizeLong();
  if (size > kMaxControlMessageBytes) {
    throw ControlError("to " + peer + ": message of " + std::to_string(size) +
                       " bytes exceeds the " + std::to_string(kMaxControlMessageBytes) +
                       "-byte limit");
  }
  std::string frame(4 + size, '\0');
  for (int i = 0; i < 4; ++i) frame[i] = static_cast<char>(size >> (8 * i));
  if (!message.SerializeToArray(frame.data() + 4, static_cast<int>(size))) {
    throw ControlError("to " + peer + ": cannot serialise " + message.GetTypeName());
  }
  return frame;
}

uint32_t decode_control_frame_length(const unsigned char (&prefix)[4], const std::string& peer) {
  const uint32_t size = uint32_t{prefix[0]} | uint32_t{prefix[1]} << 8 | uint32_t{prefix[2]} << 16 |
                        uint32_t{prefix[3]} << 24;
  if (size > kMaxControlMessageBytes) {
    throw ControlError("from " + peer + ": message of " + std::to_string(size) +
                       " bytes exceeds the " + std::to_string(kMaxControlMessageBytes) +
                       "-byte limit");
  }
  return size;
}

void decode_control_frame_body(const unsigned char* body, size_t size,
                               google::protobuf::MessageLite& message, const std::string& peer) {
  if (size > kMaxControlMessageBytes || !message.ParseFromArray(body, static_cast<int>(size))) {
    throw ControlError("from " + peer + ": a " + std::to_string(size) +
                       "-byte message does not parse as " + message.GetTypeName());
  }
}

// ---------------------------------------------------------------------------------------------
// ControlChannel.

ControlChannel::ControlChannel(int fd, std::string peer) : fd_(fd), peer_(std::move(peer)) {}

ControlChannel::~ControlChannel() { close(); }

ControlChannel::ControlChannel(ControlChannel&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), peer_(std::move(other.peer_)) {}

ControlChannel& ControlChannel::operator=(ControlChannel&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    peer_ = std::move(other.peer_);
  }
  return *this;
}

void ControlChannel::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

ControlChannel ControlChannel::connect(const std::string& socket_path) {
  const int fd = try_connect(socket_path);
  if (fd < 0) {
    throw ControlError(system_error("cannot connect to the data service at " + socket_path +
                                    " (is hds-data-service serve running?)"));
  }
  return ControlChannel(fd, "data service at " + socket_path);
}

void ControlChannel::send(const google::protobuf::MessageLite& message) {
  const std::string frame = encode_control_frame(message, peer_);
  for (size_t sent = 0; sent < frame.size();) {
    // MSG_NOSIGNAL: a vanished peer is an error here, not a SIGPIPE.
    const ssize_t n = ::send(fd_, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ControlError(system_error("to " + peer_ + ": send"));
    sent += static_cast<size_t>(n);
  }
}

bool ControlChannel::readable_within(double timeout_seconds) {
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(std::max(timeout_seconds, 0.0)));
  for (;;) {
    pollfd readable{fd_, POLLIN, 0};
    const int ready = poll(&readable, 1, poll_timeout_ms(&deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) throw ControlError(system_error("from " + peer_ + ": poll"));
    return ready > 0;
  }
}

bool ControlChannel::receive(google::protobuf::MessageLite& message, double timeout_seconds) {
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(std::max(timeout_seconds, 0.0)));
  const Clock::time_point* limit = timeout_seconds < 0 ? nullptr : &deadline;
  // Reads exactly `size` bytes; false on end of stream before the first byte.
  auto read_exactly = [&](unsigned char* data, size_t size, bool at_message_start) {
    for (size_t got = 0; got < size;) {
      pollfd readable{fd_, POLLIN, 0};
      const int ready = poll(&readable, 1, poll_timeout_ms(limit));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) throw ControlError(system_error("from " + peer_ + ": poll"));
      if (ready == 0) {
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%.1f", timeout_seconds);
        throw ControlError("from " + peer_ + ": nothing within " + std::string(seconds) + " s");
      }
      const ssize_t n = ::recv(fd_, data + got, size - got, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw ControlError(system_error("from " + peer_ + ": recv"));
      if (n == 0) {
        if (got == 0 && at_message_start) return false;
        throw ControlError("from " + peer_ + ": connection closed in the middle of a message");
      }
      got += static_cast<size_t>(n);
    }
    return true;
  };

  unsigned char prefix[4];
  if (!read_exactly(prefix, 4, true)) return false;
  const uint32_t size = decode_control_frame_length(prefix, peer_);
  std::vector<unsigned char> body(size);
  if (size > 0) read_exactly(body.data(), size, false);
  decode_control_frame_body(body.data(), size, message, peer_);
  return true;
}

hds::control::Reply ControlChannel::call(const hds::control::Request& request,
                                         double timeout_seconds) {
  send(request);
  hds::control::Reply reply;
  if (!receive(reply, timeout_seconds)) {
    throw ControlError(peer_ + " closed the connection");
  }
  return reply;
}

void ControlChannel::shutdown() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

uid_t ControlChannel::peer_uid() const {
  ucred credentials{};
  socklen_t size = sizeof credentials;
  if (getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0) {
    throw ControlError(system_error("SO_PEERCRED"));
  }
  return credentials.uid;
}

pid_t ControlChannel::peer_pid() const {
  ucred credentials{};
  socklen_t size = sizeof credentials;
  if (getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0) {
    throw ControlError(system_error("SO_PEERCRED"));
  }
  return credentials.pid;
}

// ---------------------------------------------------------------------------------------------
// ControlListener.

ControlListener::ControlListener(const std::string& socket_path) : path_(socket_path) {
  const sockaddr_un address = socket_address(path_);
  const fs::path directory = fs::absolute(fs::path(path_)).parent_path();

  struct stat status {};
  if (stat(directory.c_str(), &status) != 0) {
    if (errno != ENOENT) throw ControlError(system_error("socket directory " + directory.string()));
    std::error_code error;
    fs::create_directories(directory.parent_path(), error);
    if (mkdir(directory.c_str(), 0700) != 0) {
      throw ControlError(system_error("cannot create socket directory " + directory.string()));
    }
    created_directory_ = directory.string();
  } else if (!S_ISDIR(status.st_mode) || status.st_uid != geteuid() ||
             (status.st_mode & 022) != 0) {
    // Whoever can write the directory could replace the socket with their own.
    throw ControlError("socket directory " + directory.string() +
                       " must be a directory of this user that no one else can write; give "
                       "--socket a path in a directory that does not exist yet (the service "
                       "creates it with mode 0700)");
  }

  if (lstat(path_.c_str(), &status) == 0) {
    if (!S_ISSOCK(status.st_mode)) {
      throw ControlError("socket path " + path_ + " exists and is not a socket");
    }
    const int live = try_connect(path_);
    if (live >= 0) {
      ::close(live);
      throw ControlError("a data service is already listening on " + path_);
    }
    ::unlink(path_.c_str());  // left by a service that died
  }

  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw ControlError(system_error("socket"));
  // The socket file gets its mode at bind time: make it 0600 from the start.
  const mode_t old_mask = umask(0177);
  const int bound = bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  const int bind_errno = errno;
  umask(old_mask);
  if (bound != 0 || chmod(path_.c_str(), 0600) != 0 || listen(fd_, 64) != 0) {
    errno = bound != 0 ? bind_errno : errno;
    const std::string message = system_error("cannot listen on " + path_);
    ::close(fd_);
    if (bound == 0) ::unlink(path_.c_str());
    if (!created_directory_.empty()) ::rmdir(created_directory_.c_str());
    throw ControlError(message);
  }
}

ControlListener::~ControlListener() {
  ::close(fd_);
  ::unlink(path_.c_str());
  if (!created_directory_.empty()) ::rmdir(created_directory_.c_str());
}

ControlChannel ControlListener::accept() {
  for (;;) {
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) return ControlChannel(fd, "trainer connection");
    if (errno != EINTR) throw ControlError(system_error("accept on " + path_));
  }
}

}  // namespace hds::transport
