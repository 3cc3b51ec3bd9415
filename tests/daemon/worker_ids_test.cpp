// The worker uid/gid allocator and --worker-ids.
#include "daemon/launch/worker_ids.h"

#include <gtest/gtest.h>

namespace vmmd::daemon {
namespace {

bool noHostAccounts(uint32_t) { return false; }

TEST(WorkerIdRange, ParsesBaseAndCount) {
  auto range = parseWorkerIdRange("200000:10");
  ASSERT_TRUE(range.ok()) << range.error().message();
  EXPECT_EQ(*range, (WorkerIdRange{200000, 10}));
  EXPECT_EQ(*parseWorkerIdRange("0x70000000:0x10000"), WorkerIdRange{});
}

TEST(WorkerIdRange, RefusesWhatIsNoUnprivilegedRange) {
  EXPECT_EQ(parseWorkerIdRange("5").error().message(), "--worker-ids: '5': expected BASE:COUNT");
  EXPECT_EQ(parseWorkerIdRange("a:5").error().message(), "--worker-ids: 'a:5': BASE and COUNT must be numbers");
  EXPECT_EQ(parseWorkerIdRange("0:5").error().message(), "--worker-ids: '0:5': uid 0 is root, not an unprivileged id");
  EXPECT_EQ(parseWorkerIdRange("10:0").error().message(), "--worker-ids: '10:0': COUNT must be at least 1");
  EXPECT_EQ(parseWorkerIdRange("2147483000:1000").error().message(),
            "--worker-ids: '2147483000:1000': the range must end below 2^31");
}

TEST(WorkerIdAllocator, GivesEachWorkerItsOwnIdAndTakesItBack) {
  WorkerIdAllocator ids({1000000, 3}, noHostAccounts);
  auto a = ids.acquire();
  auto b = ids.acquire();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->uid(), 1000000u);
  EXPECT_EQ(a->gid(), 1000000u);
  EXPECT_EQ(b->uid(), 1000001u);
  a->release();
  EXPECT_FALSE(ids.inUse(1000000));
  auto c = ids.acquire();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->uid(), 1000000u) << "the lowest free one";
}

TEST(WorkerIdAllocator, AFullRangeIsAnErrorNotASharedId) {
  WorkerIdAllocator ids({1000000, 2}, noHostAccounts);
  auto a = ids.acquire();
  auto b = ids.acquire();
  auto c = ids.acquire();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message(), "no free worker uid in 1000000:2 (--worker-ids): 2 workers hold one");
  { WorkerIdLease gone = std::move(*a); }  // a lease going out of scope gives its id back
  EXPECT_TRUE(ids.acquire().ok());
}

TEST(WorkerIdAllocator, IdsOfHostAccountsAreSkipped) {
  WorkerIdAllocator ids({1000000, 3}, [](uint32_t id) { return id == 1000000; });
  auto a = ids.acquire();
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->uid(), 1000001u);
  // The real check: root's and nobody's ids are host accounts.
  EXPECT_TRUE(WorkerIdAllocator::hostHasId(0));
}

TEST(WorkerIdAllocator, AReattachedWorkersIdIsReservedAndNotHandedOutAgain) {
  WorkerIdAllocator ids({1000000, 2}, noHostAccounts);
  auto kept = ids.reserve(1000000);
  ASSERT_TRUE(kept.ok());
  auto fresh = ids.acquire();
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->uid(), 1000001u);
  auto twice = ids.reserve(1000000);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().message(), "worker uid 1000000 is held by another VM's worker");
  // Outside the range (it changed across the restart): still kept out of use.
  EXPECT_TRUE(ids.reserve(5000000).ok());
}

}  // namespace
}  // namespace vmmd::daemon
