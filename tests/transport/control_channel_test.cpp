// The control channel: framing (round trip, end of stream, oversized, truncated and garbled
// messages, timeouts) and the listening socket's permissions and lifetime.
#include "hds/transport/control_channel.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "hds/test/files.h"

namespace hds::transport {
namespace {

namespace fs = std::filesystem;

std::string control_error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const ControlError& error) {
    return error.what();
  }
  ADD_FAILURE() << "no ControlError thrown";
  return "";
}

// Two connected channels, and the raw descriptor of the second for writing odd bytes.
struct ChannelPair {
  ChannelPair() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    raw = fds[1];
    receiver = std::make_unique<ControlChannel>(fds[0], "test peer");
  }
  ~ChannelPair() {
    if (raw >= 0) close(raw);
  }
  void write_raw(const std::string& bytes) {
    ASSERT_EQ(write(raw, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void close_raw() {
    close(raw);
    raw = -1;
  }
  std::unique_ptr<ControlChannel> receiver;
  int raw = -1;
};

std::string length_prefix(uint32_t size) {
  return std::string{static_cast<char>(size & 0xff), static_cast<char>((size >> 8) & 0xff),
                     static_cast<char>((size >> 16) & 0xff), static_cast<char>(size >> 24)};
}

TEST(ControlChannel, a_message_round_trips_with_a_little_endian_length) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  ControlChannel sender(fds[0], "a");
  ControlChannel receiver(fds[1], "b");
  hds::control::Request request;
  request.mutable_hello()->set_protocol_version(1);
  request.mutable_hello()->set_job_id("job");
  request.mutable_hello()->set_rank(3);
  sender.send(request);
  hds::control::Request got;
  ASSERT_TRUE(receiver.receive(got, 1.0));
  EXPECT_EQ(got.hello().job_id(), "job");
  EXPECT_EQ(got.hello().rank(), 3);
  EXPECT_EQ(receiver.peer_uid(), geteuid());
}

TEST(ControlChannel, end_of_stream_between_messages_is_a_clean_close) {
  ChannelPair pair;
  pair.close_raw();
  hds::control::Request got;
  EXPECT_FALSE(pair.receiver->receive(got, 1.0));
}

TEST(ControlChannel, an_oversized_length_is_refused_before_reading_it) {
  ChannelPair pair;
  pair.write_raw(length_prefix(0x7fffffff));
  hds::control::Request got;
  EXPECT_NE(control_error_of([&] { pair.receiver->receive(got, 1.0); }).find("exceeds the 65536"),
            std::string::npos);
}

TEST(ControlChannel, a_truncated_message_is_an_error) {
  ChannelPair pair;
  pair.write_raw(length_prefix(10) + "abc");
  pair.close_raw();
  hds::control::Request got;
  EXPECT_NE(control_error_of([&] {
              pair.receiver->receive(got, 1.0);
            }).find("closed in the middle of a message"),
            std::string::npos);
}

TEST(ControlChannel, garbage_does_not_parse) {
  ChannelPair pair;
  pair.write_raw(length_prefix(4) + "\xff\xff\xff\xff");
  hds::control::Request got;
  EXPECT_NE(control_error_of([&] { pair.receiver->receive(got, 1.0); }).find("does not parse"),
            std::string::npos);
}

TEST(ControlChannel, a_silent_peer_times_out) {
  ChannelPair pair;
  hds::control::Request got;
  EXPECT_NE(
      control_error_of([&] { pair.receiver->receive(got, 0.1); }).find("nothing within 0.1 s"),
      std::string::npos);
}

TEST(ControlChannel, connecting_to_nothing_names_the_socket) {
  const std::string message =
      control_error_of([] { ControlChannel::connect("/nonexistent/dir/socket"); });
  EXPECT_NE(message.find("/nonexistent/dir/socket"), std::string::npos) << message;
  EXPECT_NE(message.find("is hds-data-service serve running?"), std::string::npos) << message;
}

TEST(ControlListener, creates_a_private_directory_and_an_owner_only_socket_and_removes_both) {
  hds::test::TempDir dir;
  const fs::path socket = dir.path() / "run" / "data.sock";
  {
    ControlListener listener(socket.string());
    struct stat status {};
    ASSERT_EQ(stat(socket.parent_path().c_str(), &status), 0);
    EXPECT_EQ(status.st_mode & 0777, 0700u);
    ASSERT_EQ(lstat(socket.c_str(), &status), 0);
    EXPECT_TRUE(S_ISSOCK(status.st_mode));
    EXPECT_EQ(status.st_mode & 0777, 0600u);
    ControlChannel client = ControlChannel::connect(socket.string());
    ControlChannel accepted = listener.accept();
    EXPECT_EQ(accepted.peer_pid(), getpid());
  }
  EXPECT_FALSE(fs::exists(socket));
  EXPECT_FALSE(fs::exists(socket.parent_path()));
}

TEST(ControlListener, refuses_a_directory_others_can_write) {
  hds::test::TempDir dir;
  fs::permissions(dir.path(), fs::perms::all);
  const std::string message =
      control_error_of([&] { ControlListener listener(dir.file("data.sock")); });
  EXPECT_NE(message.find("no one else can write"), std::string::npos) << message;
}

TEST(ControlListener, replaces_a_stale_socket_and_refuses_a_live_one) {
  hds::test::TempDir dir;
  const std::string path = dir.file("data.sock");
  {
    // A socket file nobody listens on: what a killed service leaves.
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, path.c_str());
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    close(fd);
  }
  ControlListener listener(path);
  EXPECT_NE(control_error_of([&] { ControlListener second(path); }).find("already listening"),
            std::string::npos);
}

TEST(ControlListener, refuses_a_path_too_long_for_a_socket) {
  EXPECT_NE(control_error_of([] {
              ControlListener listener("/tmp/" + std::string(200, 'x'));
            }).find("must be 1 to 107 bytes"),
            std::string::npos);
}

}  // namespace
}  // namespace hds::transport
