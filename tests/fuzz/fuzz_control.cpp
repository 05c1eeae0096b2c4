// libFuzzer target: control-channel traffic (proto/control.proto) as either end receives it. The
// input is a byte stream of frames; each frame's length prefix is checked and its body parsed as
// a Request (what the service reads) and as a Reply (what a trainer reads), with the functions
// ControlChannel::receive uses. A bad length or body must raise ControlError; a message that
// parses must survive encode_control_frame and a second decode unchanged. Anything else (a crash,
// another exception, a sanitizer report) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "control.pb.h"
#include "hds/transport/control_channel.h"

namespace {

const std::string kPeer = "fuzz peer";

// Decodes `body` as a `Message`; when it parses, checks that framing it again round-trips.
template <class Message>
void check_message(const unsigned char* body, size_t size) {
  Message message;
  try {
    hds::transport::decode_control_frame_body(body, size, message, kPeer);
  } catch (const hds::transport::ControlError&) {
    return;
  }
  // Re-encoding may grow a message (a negative int32 sent in 5 bytes takes 10), so one near the
  // limit may no longer fit a frame: refusing it is right, refusing a smaller one is a finding.
  std::string frame;
  try {
    frame = hds::transport::encode_control_frame(message, kPeer);
  } catch (const hds::transport::ControlError&) {
    if (message.ByteSizeLong() <= hds::transport::kMaxControlMessageBytes) __builtin_trap();
    return;
  }
  unsigned char prefix[4];
  std::memcpy(prefix, frame.data(), 4);
  if (hds::transport::decode_control_frame_length(prefix, kPeer) != frame.size() - 4)
    __builtin_trap();
  Message again;
  hds::transport::decode_control_frame_body(
      reinterpret_cast<const unsigned char*>(frame.data()) + 4, frame.size() - 4, again, kPeer);
  if (again.SerializeAsString() != message.SerializeAsString()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  size_t at = 0;
  while (size - at >= 4) {
    unsigned char prefix[4];
    std::memcpy(prefix, data + at, 4);
    uint32_t length = 0;
    try {
      length = hds::transport::decode_control_frame_length(prefix, kPeer);
    } catch (const hds::transport::ControlError&) {
      return 0;  // the receiver drops the connection
    }
    if (length > hds::transport::kMaxControlMessageBytes) __builtin_trap();
    at += 4;
    if (size - at < length) return 0;  // truncated: "connection closed in the middle"
    check_message<hds::control::Request>(data + at, length);
    check_message<hds::control::Reply>(data + at, length);
    at += length;
  }
  return 0;
}
