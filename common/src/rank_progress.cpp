#include "hds/common/rank_progress.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "hds/common/read_file.h"

namespace hds::common {

namespace {

using nlohmann::json;

constexpr RankActivity kActivities[] = {
    RankActivity::starting,      RankActivity::waiting_for_data, RankActivity::reconnecting,
    RankActivity::computing,     RankActivity::between_steps,    RankActivity::validating,
    RankActivity::checkpointing, RankActivity::finishing,
};

RankActivity activity_named(const std::string& name) {
  for (RankActivity activity : kActivities) {
    if (name == activity_name(activity)) return activity;
  }
  throw std::invalid_argument("unknown activity " + name);
}

}  // namespace

const char* activity_name(RankActivity activity) {
  switch (activity) {
    case RankActivity::starting:
      return "starting";
    case RankActivity::waiting_for_data:
      return "waiting for data";
    case RankActivity::reconnecting:
      return "waiting for a new data service";
    case RankActivity::computing:
      return "computing";
    case RankActivity::between_steps:
      return "between steps";
    case RankActivity::validating:
      return "validating";
    case RankActivity::checkpointing:
      return "checkpointing";
    case RankActivity::finishing:
      return "finishing";
  }
  return "?";
}

bool has_deadline(RankActivity activity) {
  return activity == RankActivity::computing || activity == RankActivity::between_steps;
}

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string progress_table_dir(const std::string& output_dir) {
  return (std::filesystem::path(output_dir) / "progress").string();
}

int64_t completed_steps(const RankProgress& progress) {
  const bool under_way = progress.activity == RankActivity::waiting_for_data ||
                         progress.activity == RankActivity::computing;
  return under_way ? progress.global_step - 1 : progress.global_step;
}

int64_t most_steps_done(const ProgressTable& table, int ranks,
                        const std::function<bool(const RankProgress&)>& counts) {
  int64_t done = 0;
  for (int rank = 0; rank < ranks; ++rank) {
    const auto record = table.read(rank);
    if (record && counts(*record)) done = std::max(done, completed_steps(*record));
  }
  return done;
}

ProgressTable::ProgressTable(std::string directory) : directory_(std::move(directory)) {
  std::error_code error;
  std::filesystem::create_directories(directory_, error);
  if (error) {
    throw std::runtime_error("cannot create the progress folder " + directory_ + ": " +
                             error.message());
  }
}

std::string ProgressTable::path_of(int rank) const {
  return (std::filesystem::path(directory_) / ("rank-" + std::to_string(rank) + ".json")).string();
}

void ProgressTable::publish(const RankProgress& p) const {
  const json record{{"instance", p.instance},
                    {"rank", p.rank},
                    {"pid", p.pid},
                    {"host", p.host},
                    {"activity", activity_name(p.activity)},
                    {"activity_seconds", p.activity_seconds},
                    {"epoch", p.epoch},
                    {"step", p.step},
                    {"global_step", p.global_step},
                    {"resumed_from", p.resumed_from},
                    {"collectives", p.collectives},
                    {"collective", p.collective},
                    {"written_at", p.written_at}};
  hds::common::replace_file(path_of(p.rank), record.dump() + "\n");
}

std::optional<RankProgress> ProgressTable::read(int rank) const {
  try {
    const json record = json::parse(hds::common::read_whole_file(path_of(rank)));
    RankProgress p;
    p.instance = record.at("instance").get<std::string>();
    p.rank = record.at("rank").get<int>();
    p.pid = record.at("pid").get<int>();
    p.host = record.at("host").get<std::string>();
    p.activity = activity_named(record.at("activity").get<std::string>());
    p.activity_seconds = record.at("activity_seconds").get<double>();
    p.epoch = record.at("epoch").get<int>();
    p.step = record.at("step").get<int>();
    p.global_step = record.at("global_step").get<int64_t>();
    p.resumed_from = record.at("resumed_from").get<int64_t>();
    p.collectives = record.at("collectives").get<uint64_t>();
    p.collective = record.at("collective").get<std::string>();
    p.written_at = record.at("written_at").get<double>();
    if (p.rank != rank) return std::nullopt;
    return p;
  } catch (const std::exception&) {
    return std::nullopt;  // no record yet, or not one of ours
  }
}

}  // namespace hds::common
