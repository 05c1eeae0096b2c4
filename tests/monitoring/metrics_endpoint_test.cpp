// MetricsEndpoint served for real: a registry's families and the resident memory scraped over TCP
// with the rank labels, an ephemeral port reported as the one bound, a taken port refused with
// the caller's hint, and the text accepted by `promtool check metrics` where installed.
#include "hds/monitoring/metrics_endpoint.h"

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "hds/test/files.h"
#include "hds/test/prometheus.h"

namespace hds::monitoring {
namespace {

using hds::test::http_get;
using hds::test::parse_exposition;
using hds::test::value_of;

std::shared_ptr<prometheus::Registry> registry_with_counter(const Labels& labels, double value) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("hds_test_events_total")
      .Help("Events counted by the test")
      .Labels(labels)
      .Register(*registry)
      .Add({})
      .Increment(value);
  return registry;
}

TEST(MetricsEndpoint, serves_the_registry_and_resident_memory_with_the_rank_labels) {
  const Labels labels = rank_labels(3, 1);
  EXPECT_EQ(labels, (Labels{{"rank", "3"}, {"local_rank", "1"}}));
  MetricsEndpoint endpoint("127.0.0.1", 0, registry_with_counter(labels, 5), labels, "hint");
  ASSERT_GT(endpoint.port(), 0);
  EXPECT_EQ(endpoint.url(), "http://127.0.0.1:" + std::to_string(endpoint.port()) + "/metrics");

  const auto response = http_get(endpoint.port(), "/metrics");
  ASSERT_EQ(response.status, 200);
  const auto samples = parse_exposition(response.body);
  EXPECT_EQ(value_of(samples, "hds_test_events_total", labels), 5.0) << response.body;
  // Resident memory of this test process: more than a megabyte, less than the machine.
  const double resident =
      value_of(samples, "hds_process_resident_memory_bytes", labels).value_or(0);
  EXPECT_GT(resident, 1 << 20) << response.body;
  EXPECT_LT(resident, static_cast<double>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE));
}

TEST(MetricsEndpoint, a_taken_port_is_an_error_naming_the_address_and_the_hint) {
  const int holder = hds::test::bind_loopback(0);
  ASSERT_GE(holder, 0);
  ASSERT_EQ(listen(holder, 1), 0);
  const int port = hds::test::port_of(holder);
  try {
    MetricsEndpoint endpoint("127.0.0.1", port, registry_with_counter({}, 1), {},
                             "choose another with the.field");
    FAIL() << "served on a taken port";
  } catch (const MetricsError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << message;
    EXPECT_NE(message.find("choose another with the.field"), std::string::npos) << message;
  }
  close(holder);
}

TEST(MetricsEndpoint, bucket_sets_are_increasing_and_span_milliseconds_to_minutes) {
  for (const auto* buckets : {&step_seconds_buckets(), &slow_operation_seconds_buckets()}) {
    ASSERT_FALSE(buckets->empty());
    EXPECT_TRUE(std::is_sorted(buckets->begin(), buckets->end()));
    EXPECT_EQ(std::adjacent_find(buckets->begin(), buckets->end()), buckets->end());
    EXPECT_LE(buckets->front(), 0.01);
    EXPECT_GE(buckets->back(), 120);
  }
}

TEST(MetricsEndpoint, promtool_accepts_the_exposition) {
  const std::string promtool = hds::test::find_program("promtool");
  if (promtool.empty()) GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  const Labels labels = rank_labels(0, 0);
  MetricsEndpoint endpoint("127.0.0.1", 0, registry_with_counter(labels, 2), labels, "hint");
  const auto response = http_get(endpoint.port(), "/metrics");
  ASSERT_EQ(response.status, 200);
  const std::string dir = hds::test::scratch_dir("monitoring-promtool");
  hds::test::write_text(dir + "/metrics.txt", response.body);
  const std::string command = promtool + " check metrics < " + dir + "/metrics.txt 2>&1";
  const int status = std::system(command.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << response.body;
}

}  // namespace
}  // namespace hds::monitoring
