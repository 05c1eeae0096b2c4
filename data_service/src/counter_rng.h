// Counter-based random numbers: every draw is a pure function of (key, draw number), so a result
// never depends on the order in which threads ran or on std:: distributions' implementation.
// The mixer is SplitMix64 (Steele, Lea & Flood 2014; the finaliser of java.util.SplittableRandom).
// Thread-compatible: one CounterRng per thread, or a const key shared freely.
#pragma once

#include <cstdint>
#include <initializer_list>

namespace hds::data::detail {

// One SplitMix64 step: a bijective, well-avalanched 64-bit mix.
constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Folds a tuple of integers (a domain tag first, then e.g. seed, epoch, film) into one key.
// Each part passes through the mixer, so (1, 2) and (2, 1) give unrelated keys.
inline uint64_t derive_key(std::initializer_list<uint64_t> parts) {
  uint64_t key = 0;
  for (uint64_t part : parts) key = splitmix64(key ^ part);
  return key;
}

// Domain tags keep the streams of different uses apart even when their numbers coincide.
enum class RngDomain : uint64_t {
  kPhantomFilm = 0x5048414E544F4D31ULL,     // "PHANTOM1"
  kPhantomFamily = 0x46414D494C593031ULL,   // "FAMILY01"
  kPhantomTexture = 0x5445585455524531ULL,  // "TEXTURE1"
  kPhantomPixelNoise = 0x4E4F495345303031ULL,
  kEpochShuffle = 0x53485546464C4531ULL,  // "SHUFFLE1"
  kPatch = 0x5041544348303031ULL,         // "PATCH001"
  kFolds = 0x464F4C4453303031ULL,         // "FOLDS001"
};

inline uint64_t domain(RngDomain tag) { return static_cast<uint64_t>(tag); }

// Draw n of the stream `key` is splitmix64(key + n * golden ratio): exactly the SplitMix64
// generator seeded with `key`, but addressable by n, so draws can be skipped or taken in any order.
class CounterRng {
 public:
  explicit CounterRng(uint64_t key, uint64_t first_draw = 0) : key_(key), counter_(first_draw) {}

  uint64_t at(uint64_t draw) const { return splitmix64(key_ + draw * 0x9E3779B97F4A7C15ULL); }
  uint64_t next() { return at(counter_++); }

  // Uniform on (0, 1] with 53 random bits; "u <= p" is then never true for p = 0 and always for
  // p = 1.
  double uniform_open_closed() { return static_cast<double>((next() >> 11) + 1) * 0x1.0p-53; }

  // Uniform double on [lo, hi).
  double uniform(double lo, double hi) {
    return lo + (hi - lo) * (static_cast<double>(next() >> 11) * 0x1.0p-53);
  }

  // Uniform integer in [0, n), n >= 1. Lemire's multiply-shift; the bias, at most n / 2^64, is
  // far below anything a training run could notice.
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }

 private:
  uint64_t key_;
  uint64_t counter_;
};

}  // namespace hds::data::detail
