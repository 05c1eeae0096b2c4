#include "hds/data/film_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "counter_rng.h"
#include "hds/common/read_file.h"
#include "hds/data/crc32.h"

namespace hds::data {
namespace {

constexpr char kMagic[8] = {'H', 'D', 'S', 'F', 'I', 'L', 'M', '1'};

// The fixed-size header in front of the pixels and the mask.
struct EntryHeader {
  char magic[8];
  uint32_t version;
  int32_t rows;
  int32_t cols;
  uint32_t payload_crc32;  // of the patient, the pixels and the mask
  uint64_t key_high;
  uint64_t key_low;
  int32_t mass_count;
  uint32_t patient_bytes;
};
constexpr uint32_t kVersion = 1;

size_t payload_bytes(const EntryHeader& header) {
  const size_t pixels = static_cast<size_t>(header.rows) * static_cast<size_t>(header.cols);
  return header.patient_bytes + pixels * sizeof(float) + pixels;
}

// An open, read-only mapping of a whole file; unmapped and closed on destruction.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return;
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || st.st_size <= 0) return;
    size_ = static_cast<size_t>(st.st_size);
    void* data = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (data != MAP_FAILED) data_ = data;
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(data_, size_);
    if (fd_ >= 0) ::close(fd_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const char* data() const { return static_cast<const char*>(data_); }
  size_t size() const { return data_ ? size_ : 0; }

 private:
  int fd_ = -1;
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace

std::string CacheKey::hex() const {
  std::ostringstream out;
  out << std::hex << std::setfill('0') << std::setw(16) << high << std::setw(16) << low;
  return out.str();
}

CacheKey make_cache_key(const std::vector<std::string_view>& parts) {
  // FNV-1a and a SplitMix64 chain over 8-byte words: independent enough that a collision of both
  // (2^-128) is not a concern; the length prefix keeps ("ab","c") and ("a","bc") apart.
  uint64_t fnv = 0xCBF29CE484222325ULL;
  uint64_t mix = 0x243F6A8885A308D3ULL;
  auto feed = [&](const char* data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      fnv = (fnv ^ static_cast<unsigned char>(data[i])) * 0x100000001B3ULL;
    }
    for (size_t i = 0; i < n; i += 8) {
      uint64_t word = 0;
      std::memcpy(&word, data + i, std::min<size_t>(8, n - i));
      mix = detail::splitmix64(mix ^ word);
    }
  };
  for (const auto& part : parts) {
    const uint64_t length = part.size();
    feed(reinterpret_cast<const char*>(&length), sizeof length);
    feed(part.data(), part.size());
  }
  return {fnv, detail::splitmix64(mix)};
}

FilmCache::FilmCache(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw DataError(dir_ + ": cannot create the preprocessing cache: " + ec.message());
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all, ec);
}

std::string FilmCache::path_of(const CacheKey& key) const {
  return dir_ + "/" + key.hex() + ".film";
}

std::optional<Film> FilmCache::load(const CacheKey& key, const std::string& id) const {
  const std::string path = path_of(key);
  std::optional<Film> film;
  {
    const MappedFile file(path);
    EntryHeader header{};
    if (file.size() >= sizeof header) std::memcpy(&header, file.data(), sizeof header);
    const bool usable =
        file.size() >= sizeof header && std::memcmp(header.magic, kMagic, sizeof kMagic) == 0 &&
        header.version == kVersion && header.rows > 0 && header.cols > 0 &&
        header.patient_bytes < 4096 && header.key_high == key.high && header.key_low == key.low &&
        file.size() == sizeof header + payload_bytes(header) &&
        crc32_of(file.data() + sizeof header, file.size() - sizeof header) == header.payload_crc32;
    if (usable) {
      film.emplace();
      const char* payload = file.data() + sizeof header;
      film->id = id;
      film->patient.assign(payload, header.patient_bytes);
      film->mass_count = header.mass_count;
      film->rows = header.rows;
      film->cols = header.cols;
      const size_t pixels = static_cast<size_t>(header.rows) * header.cols;
      payload += header.patient_bytes;
      film->image.resize(pixels);
      std::memcpy(film->image.data(), payload, pixels * sizeof(float));
      film->mask.assign(payload + pixels * sizeof(float),
                        payload + pixels * sizeof(float) + pixels);
    } else if (file.size() > 0) {
      std::error_code ignored;
      std::filesystem::remove(path, ignored);  // damaged: rebuilt by the caller
    }
  }
  ++(film ? hits_ : misses_);
  return film;
}

void FilmCache::store(const CacheKey& key, const Film& film) const {
  const std::string path = path_of(key);
  const size_t pixels = static_cast<size_t>(film.rows) * film.cols;
  if (film.image.size() != pixels || film.mask.size() != pixels || film.patient.size() >= 4096) {
    throw DataError(film.id + ": film size does not match its pixels; not cached");
  }
  EntryHeader header{};
  std::memcpy(header.magic, kMagic, sizeof kMagic);
  header.version = kVersion;
  header.rows = film.rows;
  header.cols = film.cols;
  header.key_high = key.high;
  header.key_low = key.low;
  header.mass_count = film.mass_count;
  header.patient_bytes = static_cast<uint32_t>(film.patient.size());
  header.payload_crc32 = crc32_of(film.mask.data(), pixels,
                                  crc32_of(film.image.data(), pixels * sizeof(float),
                                           crc32_of(film.patient.data(), film.patient.size())));

  try {
    hds::common::replace_file_by(path, [&](const std::string& partial) {
      const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) throw DataError(path + ": cannot write cache entry: " + std::strerror(errno));
      auto write_all = [fd](const void* data, size_t bytes) {
        const char* p = static_cast<const char*>(data);
        while (bytes > 0) {
          const ssize_t n = ::write(fd, p, bytes);
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) return false;
          p += n;
          bytes -= static_cast<size_t>(n);
        }
        return true;
      };
      const bool written = write_all(&header, sizeof header) &&
                           write_all(film.patient.data(), film.patient.size()) &&
                           write_all(film.image.data(), pixels * sizeof(float)) &&
                           write_all(film.mask.data(), pixels);
      const std::string why = std::strerror(errno);
      ::close(fd);
      if (!written) throw DataError(path + ": cannot write cache entry: " + why);
    });
  } catch (const hds::common::FileWriteError& e) {
    throw DataError(std::string(e.what()) + " (cache entry)");
  }
}

}  // namespace hds::data
