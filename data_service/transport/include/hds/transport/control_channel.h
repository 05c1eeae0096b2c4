// The control channel between hds-data-service and a trainer rank (docs/design.md §5,
// proto/control.proto): length-prefixed protobuf messages (4-byte little-endian length, at most
// kMaxControlMessageBytes) over a Unix domain stream socket that only its owner can reach
// (socket 0600 in a 0700 directory; the service also checks each peer's uid).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "control.pb.h"

namespace hds::transport {

// A control-channel problem: a system call failed, the peer sent something malformed, a reply
// did not come in time. what() names the socket and the problem.
class ControlError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr uint32_t kMaxControlMessageBytes = 64 * 1024;

// The framing, without a socket (ControlChannel sends and receives with these; the fuzzer and
// tests call them directly). `peer` names the other end in errors.
// The frame of `message`: its length in 4 little-endian bytes, then the message. Throws
// ControlError when it exceeds kMaxControlMessageBytes or cannot be serialised.
std::string encode_control_frame(const google::protobuf::MessageLite& message,
                                 const std::string& peer);
// The length a frame's 4-byte prefix announces. Throws ControlError above
// kMaxControlMessageBytes (before anything of that size is read or allocated).
uint32_t decode_control_frame_length(const unsigned char (&prefix)[4], const std::string& peer);
// Parses a frame's `size`-byte body into `message`. Throws ControlError when it does not parse.
void decode_control_frame_body(const unsigned char* body, size_t size,
                               google::protobuf::MessageLite& message, const std::string& peer);

// One connected socket. Move-only; one thread sends and receives at a time, shutdown() may be
// called from another thread to unblock it.
class ControlChannel {
 public:
  // Takes ownership of the connected socket `fd`; `peer` names the other end in errors.
  ControlChannel(int fd, std::string peer);
  ~ControlChannel();
  ControlChannel(ControlChannel&& other) noexcept;
  ControlChannel& operator=(ControlChannel&& other) noexcept;
  ControlChannel(const ControlChannel&) = delete;
  ControlChannel& operator=(const ControlChannel&) = delete;

  // Connects to the service listening at `socket_path`. Throws ControlError.
  static ControlChannel connect(const std::string& socket_path);

  // Sends one framed message. Throws ControlError.
  void send(const google::protobuf::MessageLite& message);
  // Receives one framed message into `message`. Returns false when the peer closed the
  // connection cleanly before a new message; throws ControlError on a truncated, oversized or
  // unparsable message, or when nothing complete arrives within `timeout_seconds` (< 0: wait
  // for ever).
  bool receive(google::protobuf::MessageLite& message, double timeout_seconds = -1);
  // True when receive() would not block now: a message (or its start) or the end of the stream
  // arrived within `timeout_seconds`; false when nothing did. Throws ControlError when poll fails.
  bool readable_within(double timeout_seconds);
  // Sends `request` and waits up to `timeout_seconds` for its reply. Throws ControlError when
  // the connection closes or the reply is late or malformed (a reply carrying an error is
  // returned as it is).
  hds::control::Reply call(const hds::control::Request& request, double timeout_seconds);

  // Shuts the socket down both ways: a receive() blocked in another thread returns.
  void shutdown();
  // The peer's credentials (SO_PEERCRED).
  uid_t peer_uid() const;
  pid_t peer_pid() const;
  const std::string& peer() const { return peer_; }

 private:
  void close();
  int fd_ = -1;
  std::string peer_;
};

// The service's listening socket at `socket_path`. Its directory is created with mode 0700
// when missing; an existing one must belong to this user and be writable by nobody else. A
// stale socket left by a dead service is replaced; a live one is an error. The socket is 0600.
// Not thread-safe.
class ControlListener {
 public:
  explicit ControlListener(const std::string& socket_path);
  // Closes and unlinks the socket, and removes the directory if this listener created it.
  ~ControlListener();
  ControlListener(const ControlListener&) = delete;
  ControlListener& operator=(const ControlListener&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // Accepts a pending connection (call when fd() is readable). Throws ControlError.
  ControlChannel accept();

 private:
  std::string path_;
  std::string created_directory_;  // "" when the directory existed
  int fd_ = -1;
};

}  // namespace hds::transport
