// `hds-launch sbatch`: the batch script's content, the configuration copy, and the refusal of
// arguments that cannot make a working job; the steps `hds-launch slurm-run` starts.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "hds/config/config.h"
#include "hds/launch/slurm_run.h"
#include "hds/launch/slurm_script.h"
#include "hds/launch/tools.h"
#include "launch_test_support.h"

namespace hds::launch {
namespace {

using namespace testing;  // the helpers of launch_test_support.h

SbatchOptions gpu_options(const std::string& dir) {
  SbatchOptions options;
  options.config_path = write_tiny_job(dir, 3);
  options.overrides = {"train.device=cuda"};
  options.nodes = 2;
  options.gpus_per_node = 4;
  options.partition = "gpu";
  options.time = "1-00:00:00";
  options.script_path = dir + "/slurm/job.sbatch";
  options.data_service = "/opt/hds/bin/hds-data-service";
  options.trainer = "/opt/hds/bin/hds-trainer";
  return options;
}

TEST(SbatchScript, asks_slurm_for_the_nodes_gpus_signal_and_requeue) {
  const std::string dir = scratch_dir("sbatch-directives");
  const SbatchJob job = prepare_sbatch_job(gpu_options(dir));
  const std::string& script = job.script_text;
  for (const std::string line :
       {"#SBATCH --nodes=2\n", "#SBATCH --ntasks-per-node=4\n", "#SBATCH --gpus-per-node=4\n",
        "#SBATCH --partition=gpu\n", "#SBATCH --time=1-00:00:00\n", "#SBATCH --signal=B:USR1@120\n",
        "#SBATCH --requeue\n", "#SBATCH --open-mode=append\n", "#SBATCH --job-name=hds-run\n"}) {
    EXPECT_NE(script.find(line), std::string::npos) << line << "missing from\n" << script;
  }
  EXPECT_NE(script.find("#SBATCH --output=" + dir + "/run/slurm-%j.out\n"), std::string::npos);
  EXPECT_NE(script.find("#SBATCH --chdir=" + fs::current_path().string() + "\n"),
            std::string::npos);
  EXPECT_EQ(script.rfind("#!/bin/bash\n", 0), 0u);
}

TEST(SbatchScript, says_where_each_node_serves_its_ranks_metrics) {
  const std::string dir = scratch_dir("sbatch-metrics");
  SbatchOptions options = gpu_options(dir);
  options.overrides.push_back("monitoring.metrics_port=9500");
  options.overrides.push_back("monitoring.metrics_address=0.0.0.0");
  EXPECT_EQ(prepare_sbatch_job(options).metrics,
            "http://<host>:9500/metrics (local ranks 0-3: ports 9500-9503), data service port "
            "9600 on every node");
}

TEST(SbatchScript, execs_the_launchers_slurm_run_with_the_programs_and_the_config_copy) {
  const std::string dir = scratch_dir("sbatch-steps");
  SbatchOptions options = gpu_options(dir);
  options.launcher = "/opt/hds/bin/hds-launch";
  const SbatchJob job = prepare_sbatch_job(options);
  const std::string& script = job.script_text;
  // The policy is hds-launch's: the script hands the batch shell over to it (exec), so Slurm's
  // signals reach it. Absolute programs and the configuration copy, not the original file.
  EXPECT_NE(script.find("\nexec /opt/hds/bin/hds-launch slurm-run --config " + dir +
                        "/slurm/job.config.pbtxt \\\n  --ranks-per-node 4 \\\n  --data-service "
                        "/opt/hds/bin/hds-data-service \\\n  --trainer /opt/hds/bin/hds-trainer"),
            std::string::npos)
      << script;
  EXPECT_FALSE(std::regex_search(script, std::regex("@[A-Z_]+@"))) << "a field left unfilled";
}

TEST(SlurmRun, runs_one_service_per_node_and_the_trainers_under_pmix) {
  SlurmRunOptions options;
  options.config_path = "/jobs/a/job.config.pbtxt";
  options.ranks_per_node = 4;
  options.data_service = "/opt/hds/bin/hds-data-service";
  options.trainer = "/opt/hds/bin/hds-trainer";
  const SlurmAllocation allocation{"812", 1, {"gpu1", "gpu2"}};
  // A step per node's service (restarted alone), overlapping the trainer step, node-local socket,
  // a job id per run, the node's ready file in the shared folder.
  EXPECT_EQ(
      slurm_service_command(options, "/usr/bin/srun", "/tmp/hds-812-1/data.sock", "slurm-812-1",
                            "/jobs/a/run/data-service-812-1", "/jobs/a/run/.ready-slurm-812-1",
                            "gpu2"),
      (std::vector<std::string>{
          "/usr/bin/srun", "--overlap", "--mpi=none", "--nodes=1", "--ntasks=1", "--nodelist=gpu2",
          "--job-name=hds-data-service-gpu2", "--output=/jobs/a/run/data-service-812-1-gpu2.log",
          "--open-mode=append", "/opt/hds/bin/hds-data-service", "serve", "--config",
          "/jobs/a/job.config.pbtxt", "--socket", "/tmp/hds-812-1/data.sock", "--job-id",
          "slurm-812-1", "--ready-file", "/jobs/a/run/.ready-slurm-812-1/gpu2"}));
  // Trainers: pmix, the whole step dies with a rank, resume from the latest checkpoint.
  const std::vector<std::string> trainers =
      slurm_trainer_command(options, allocation, "/usr/bin/srun", "/tmp/hds-812-1/data.sock",
                            "slurm-812-1", "/dev/shm/hds-812-1");
  EXPECT_EQ(std::vector<std::string>(trainers.begin(), trainers.begin() + 8),
            (std::vector<std::string>{
                "/usr/bin/srun", "--mpi=pmix", "--kill-on-bad-exit=1", "--nodes=2", "--ntasks=8",
                "--ntasks-per-node=4", "--job-name=hds-trainer",
                "--export=ALL,OMPI_MCA_btl_vader_backing_directory=/dev/shm/hds-812-1,"
                "OMPI_MCA_orte_tmpdir_base=/dev/shm/hds-812-1"}));
  EXPECT_EQ(std::vector<std::string>(trainers.end() - 2, trainers.end()),
            (std::vector<std::string>{"--resume", "auto"}));
  const std::string joined = ::testing::PrintToString(trainers);
  EXPECT_NE(joined.find("\"data.service_socket=/tmp/hds-812-1/data.sock\""), std::string::npos);
  EXPECT_NE(joined.find("\"data.service_job_id=slurm-812-1\""), std::string::npos);
  EXPECT_EQ(joined.find("service_reconnect"), std::string::npos) << "no restarts, no waiting";
  options.max_restarts = 2;
  EXPECT_NE(
      ::testing::PrintToString(slurm_trainer_command(options, allocation, "srun", "s", "j", ""))
          .find("data.service_reconnect_seconds="),
      std::string::npos)
      << "with restarts the ranks wait for a service started again in place";
}

TEST(SbatchScript, a_fresh_run_starts_from_the_init_from_checkpoint_given_absolutely) {
  const std::string dir = scratch_dir("sbatch-init-from");
  fs::create_directories(dir + "/base/checkpoints");
  SbatchOptions options = gpu_options(dir);
  EXPECT_EQ(prepare_sbatch_job(options).script_text.find("--init-from"), std::string::npos);
  options.init_from = fs::relative(dir + "/base/checkpoints").string();
  const std::string script = prepare_sbatch_job(options).script_text;
  EXPECT_NE(script.find("--init-from " + shell_quote(dir + "/base/checkpoints") + "\n"),
            std::string::npos)
      << script;
  // A requeued run finds its own checkpoint first (--resume auto): fit then ignores --init-from.
  SlurmRunOptions run;
  run.init_from = dir + "/base/checkpoints";
  const std::vector<std::string> trainers =
      slurm_trainer_command(run, {"1", 0, {"n1"}}, "srun", "s", "j", "");
  EXPECT_EQ(
      std::vector<std::string>(trainers.end() - 4, trainers.end()),
      (std::vector<std::string>{"--init-from", dir + "/base/checkpoints", "--resume", "auto"}));
}

TEST(SbatchScript, writes_an_executable_script_that_bash_accepts) {
  const std::string dir = scratch_dir("sbatch-write");
  const SbatchJob job = prepare_sbatch_job(gpu_options(dir));
  write_sbatch_job(job);
  struct stat status {};
  ASSERT_EQ(stat(job.script_path.c_str(), &status), 0);
  EXPECT_TRUE(status.st_mode & S_IXUSR);
  EXPECT_EQ(read_text(job.script_path), job.script_text);
  EXPECT_TRUE(fs::is_directory(dir + "/run")) << "Slurm does not create --output's folder";
  Command syntax({"/bin/bash", "-n", job.script_path}, dir + "/bash-n.log");
  EXPECT_EQ(syntax.wait_exit(30), 0) << syntax.output();
}

TEST(SbatchScript, config_copy_holds_the_overrides_and_an_absolute_output_dir) {
  const std::string dir = scratch_dir("sbatch-config");
  SbatchOptions options = gpu_options(dir);
  options.overrides.push_back("train.epochs=7");
  const SbatchJob job = prepare_sbatch_job(options);
  write_sbatch_job(job);
  const hds::config::Config copy = hds::config::load_config(job.config_copy_path);
  EXPECT_EQ(copy.train().epochs(), 7);
  EXPECT_EQ(copy.train().device(), "cuda");
  EXPECT_EQ(copy.train().output_dir(), dir + "/run");
  // A later edit of the original does not change what a requeued run reads.
  testing::write_text(options.config_path, "train { epochs: 999 }");
  EXPECT_EQ(hds::config::load_config(job.config_copy_path).train().epochs(), 7);
}

TEST(SbatchScript, cpu_job_runs_the_given_ranks_without_gpus) {
  const std::string dir = scratch_dir("sbatch-cpu");
  SbatchOptions options = gpu_options(dir);
  options.overrides = {};
  options.gpus_per_node = 0;
  options.ranks_per_node = 2;
  options.nodes = 1;
  options.partition = "";
  options.time = "";
  const std::string script = prepare_sbatch_job(options).script_text;
  EXPECT_NE(script.find("#SBATCH --ntasks-per-node=2\n"), std::string::npos);
  EXPECT_EQ(script.find("--gpus-per-node"), std::string::npos);
  EXPECT_EQ(script.find("--partition"), std::string::npos);
  EXPECT_EQ(script.find("--time"), std::string::npos);
}

TEST(SbatchScript, passes_the_restart_budget_and_ready_timeout_on) {
  const std::string dir = scratch_dir("sbatch-faults");
  SbatchOptions options = gpu_options(dir);
  options.max_restarts = 3;
  options.ready_timeout_seconds = 900;
  const std::string script = prepare_sbatch_job(options).script_text;
  EXPECT_NE(script.find("--ready-timeout 900 \\\n  --max-restarts 3\n"), std::string::npos)
      << script;
}

TEST(SbatchScript, the_written_script_and_its_template_pass_shellcheck) {
  const std::string shellcheck = hds::test::find_program("shellcheck");
  if (shellcheck.empty()) GTEST_SKIP() << "shellcheck (Debian package shellcheck) not installed";
  const std::string dir = scratch_dir("sbatch-shellcheck");
  SbatchOptions options = gpu_options(dir);
  options.init_from = dir;
  options.sbatch_options = {"--account=proj"};
  const SbatchJob job = prepare_sbatch_job(options);
  write_sbatch_job(job);
  Command check({shellcheck, "--severity=info", job.script_path}, dir + "/shellcheck.log");
  EXPECT_EQ(check.wait_exit(60), 0) << check.output() << "\n" << job.script_text;
}

// prepare_sbatch_job's UsageError for `options`, or "" when it accepted them.
std::string refusal(const SbatchOptions& options) {
  try {
    prepare_sbatch_job(options);
  } catch (const UsageError& error) {
    return error.what();
  }
  return "";
}

TEST(SbatchArguments, refuses_what_cannot_make_a_working_job) {
  const std::string dir = scratch_dir("sbatch-refusals");
  struct Case {
    std::function<void(SbatchOptions&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](SbatchOptions& o) { o.nodes = 0; }, "--nodes must be at least 1"},
      {[](SbatchOptions& o) { o.gpus_per_node = -1; }, "--gpus-per-node must be 0 or more"},
      {[](SbatchOptions& o) {
         o.gpus_per_node = 0;
         o.overrides = {};
       },
       "--ranks-per-node is required with --gpus-per-node 0"},
      {[](SbatchOptions& o) { o.ranks_per_node = 8; },
       "--ranks-per-node 8 exceeds --gpus-per-node 4"},
      {[](SbatchOptions& o) { o.overrides = {}; }, "add --set train.device=cuda"},
      {[](SbatchOptions& o) {
         o.gpus_per_node = 0;
         o.ranks_per_node = 2;
       },
       "train.device is \"cuda\" but --gpus-per-node is 0"},
      {[](SbatchOptions& o) { o.time = "two hours"; }, "--time \"two hours\""},
      {[](SbatchOptions& o) { o.time = "1:2:3:4"; }, "--time \"1:2:3:4\""},
      {[](SbatchOptions& o) { o.partition = "gpu;rm -rf /"; }, "--partition \"gpu;rm -rf /\""},
      {[](SbatchOptions& o) { o.job_name = "my job"; }, "--job-name \"my job\""},
      {[](SbatchOptions& o) { o.sbatch_options = {"account=x"}; }, "--sbatch-option \"account=x\""},
      {[](SbatchOptions& o) { o.script_path = fs::temp_directory_path().string(); },
       "is a directory"},
      {[](SbatchOptions& o) {
         o.overrides.push_back("distributed.stop_grace_seconds=90");
         o.overrides.push_back("distributed.stop_checkpoint_seconds=30");
       },
       "distributed.stop_grace_seconds + distributed.stop_checkpoint_seconds = 120 s: with 10 s "
       "to requeue, a stop must fit in the 120 s"},
      {[](SbatchOptions& o) { o.overrides.push_back("monitoring.metrics_port=9400"); },
       "monitoring.metrics_address is 127.0.0.1 with --nodes 2: the other nodes' ranks could not "
       "be scraped"},
  };
  for (const Case& c : cases) {
    SbatchOptions options = gpu_options(dir);
    c.change(options);
    EXPECT_NE(refusal(options).find(c.message), std::string::npos)
        << "expected \"" << c.message << "\", got \"" << refusal(options) << "\"";
  }
  EXPECT_EQ(refusal(gpu_options(dir)), "");
  for (const std::string time :
       {"30", "10:00", "2:00:00", "1-12", "1-12:30", "7-00:00:00", "UNLIMITED"}) {
    SbatchOptions options = gpu_options(dir);
    options.time = time;
    EXPECT_EQ(refusal(options), "") << time;
  }
}

TEST(SbatchArguments, bad_configuration_names_the_field) {
  const std::string dir = scratch_dir("sbatch-bad-config");
  SbatchOptions options = gpu_options(dir);
  options.overrides.push_back("data.patch_rows=500");
  try {
    prepare_sbatch_job(options);
    FAIL() << "accepted data.patch_rows=500";
  } catch (const hds::config::ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("data.patch_rows"), std::string::npos) << error.what();
  }
}

// The command line: missing or bad options exit 2 with a message naming them.
TEST(LaunchCommandLine, bad_arguments_exit_2_with_a_message) {
  const std::string dir = scratch_dir("cli-errors");
  const std::string config = write_tiny_job(dir, 1);
  struct Case {
    std::vector<std::string> arguments;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{}, "subcommand"},
      {{"sbatch", "--config", config, "--gpus-per-node", "0"}, "--nodes is required"},
      {{"sbatch", "--config", config, "--nodes", "1", "--gpus-per-node", "0"},
       "--ranks-per-node is required"},
      {{"local", "--config", config}, "--np is required"},
      {{"local", "--config", config, "--np", "0"}, "--np"},
      {{"local", "--config", config, "--np", "2", "--job-id", "a b"}, "--job-id"},
      {{"local", "--config", config, "--np", "2", "--trainer", dir + "/none"},
       "not an executable file"},
      {{"local", "--config", dir + "/missing.pbtxt", "--np", "2"}, "missing.pbtxt"},
      {{"local", "--config", config, "--np", "2", "--set", "train.epochs=0"}, "train.epochs"},
      {{"local", "--config", config, "--np", "2", "--resume", dir + "/none"}, "--resume"},
      {{"local", "--config", config, "--np", "2", "--mpirun-arg=--hostfile=hosts"},
       "--mpirun-arg --hostfile=hosts: hds-launch local runs a job on this machine"},
      {{"local", "--config", config, "--np", "1", "--init-from", dir + "/none"},
       "--init-from " + dir + "/none: not a directory"},
      {{"sbatch", "--config", config, "--nodes", "1", "--gpus-per-node", "0", "--ranks-per-node",
        "1", "--init-from", dir + "/none"},
       "--init-from " + dir + "/none: not a directory"},
      {{"cv", "--config", config, "--set", "data.phantom.divide_into_folds=true", "--init-from",
        dir + "/none"},
       "--init-from " + dir + "/none: not a directory"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {testing::launch_binary()};
    argv.insert(argv.end(), c.arguments.begin(), c.arguments.end());
    // Stand-ins, so that the checks after the program search are reached in any build.
    if (!c.arguments.empty()) argv.insert(argv.end(), {"--data-service", "/bin/true"});
    if (!c.arguments.empty() && c.message != "not an executable file") {
      argv.insert(argv.end(), {"--trainer", "/bin/true"});
    }
    Command run(argv, dir + "/cli.log");
    EXPECT_EQ(run.wait_exit(30), 2) << ::testing::PrintToString(c.arguments) << "\n"
                                    << run.output();
    EXPECT_NE(run.output().find(c.message), std::string::npos)
        << ::testing::PrintToString(c.arguments) << " said:\n"
        << run.output();
  }
}

TEST(LaunchCommandLine, sbatch_prints_the_script_and_config_it_wrote) {
  const std::string dir = scratch_dir("cli-sbatch");
  const std::string config = write_tiny_job(dir, 1);
  Command run({testing::launch_binary(), "sbatch", "--config", config, "--nodes", "1",
               "--gpus-per-node", "0", "--ranks-per-node", "2", "--out", dir + "/job.sbatch",
               "--data-service", "/bin/true", "--trainer", "/bin/true"},
              dir + "/out.log");
  ASSERT_EQ(run.wait_exit(30), 0) << run.output();
  EXPECT_NE(run.output().find("script: " + dir + "/job.sbatch\n"), std::string::npos)
      << run.output();
  EXPECT_NE(run.output().find("config: " + dir + "/job.config.pbtxt\n"), std::string::npos);
  EXPECT_NE(read_text(dir + "/job.sbatch").find("--trainer /bin/true"), std::string::npos);
}

}  // namespace
}  // namespace hds::launch
