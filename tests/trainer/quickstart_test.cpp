// The quickstart job as a user runs it (deploy/configs/quickstart.pbtxt, its fixed seed), then
// `hds-trainer eval` of its best-Dice checkpoint on the validation films: the product's own
// default must beat the trivial answers on films where three in four hold no mass.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "hds/test/files.h"

namespace {

int run(const std::string& arguments, const std::string& log) {
  const std::string command =
      std::string(HDS_TRAINER_BINARY) + " " + arguments + " > '" + log + "' 2>&1";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(Quickstart, beats_the_trivial_baselines) {
  const std::string dir = hds::test::scratch_dir("quickstart");
  const std::string config = std::string(HDS_SOURCE_DIR) + "/deploy/configs/quickstart.pbtxt";
  ASSERT_EQ(run("fit --config '" + config + "' --set train.output_dir=" + dir +
                    "/run --set monitoring.metrics_port=0",
                dir + "/fit.log"),
            0)
      << hds::test::read_text(dir + "/fit.log");
  ASSERT_EQ(run("eval --checkpoint " + dir + "/run/checkpoints/best-dice --bootstrap 50 --out " +
                    dir + "/eval",
                dir + "/eval.log"),
            0)
      << hds::test::read_text(dir + "/eval.log");
  const auto report =
      nlohmann::json::parse(hds::test::read_text(dir + "/eval/metrics.json")).at("reports").at(0);
  const std::string shown = hds::test::read_text(dir + "/eval/metrics.md");

  // The validation split holds INbreast's share of films with a mass (107 of 410: 26%).
  const double with_mass =
      report.at("films_with_mass").get<double>() / report.at("films").get<int>();
  EXPECT_GT(with_mass, 0.15) << shown;
  EXPECT_LT(with_mass, 0.40) << shown;

  const auto& model = report.at("model");
  const auto& baselines = report.at("baselines");
  // Reference protocol: an all-empty mask already scores 1 on every mass-free film.
  EXPECT_GT(model.at("reference").at("dice").at("value").get<double>(),
            baselines.at("empty_mask").at("reference_dice").get<double>())
      << shown;
  // Lesion protocol: masses found, which the empty mask never does.
  EXPECT_GT(model.at("lesion").at("lesion_sensitivity").at("value").get<double>(),
            baselines.at("empty_mask").at("lesion_sensitivity").get<double>())
      << shown;
  // Classification at 0.5: better than calling every film negative.
  EXPECT_GT(model.at("classification").at("accuracy").at("value").get<double>(),
            baselines.at("all_negative").at("accuracy").get<double>())
      << shown;
}

}  // namespace
