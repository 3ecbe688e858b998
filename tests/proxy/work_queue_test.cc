// Tests proxy/common/work_queue.h.
#include "proxy/common/work_queue.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace tollgate {
namespace {

TEST(WorkQueue, RunsEveryCallbackPostedFromManyThreadsAndDrainsOnDestruction) {
  std::atomic<int> ran = 0;
  {
    WorkQueue queue(2);
    std::vector<std::thread> posters;
    for (int t = 0; t < 4; ++t) {
      posters.emplace_back([&] {
        for (int i = 0; i < 1000; ++i) queue.Post([&] { ran.fetch_add(1); });
      });
    }
    for (std::thread& poster : posters) poster.join();
  }  // the destructor runs what is still queued
  EXPECT_EQ(ran.load(), 4000);
}

TEST(WorkQueue, ACallbackMayBlockWhileAnotherThreadRunsTheRest) {
  WorkQueue queue(2);
  absl::Notification release, second_ran;
  queue.Post([&] { release.WaitForNotification(); });
  queue.Post([&] { second_ran.Notify(); });
  EXPECT_TRUE(second_ran.WaitForNotificationWithTimeout(absl::Seconds(30)));
  release.Notify();
}

}  // namespace
}  // namespace tollgate
