// Store: network definitions, their state, their static leases (migration 4).
#include <gtest/gtest.h>

#include "daemon/store/store.h"
#include "tests/support/temp_dir.h"

namespace vmmd::daemon {
namespace {

using test_support::TempDir;

TEST(StoreNetworks, DefineStateLeasesUndefine) {
  TempDir dir;
  auto store = Store::open(dir.file("vmmd.db"));
  ASSERT_TRUE(store.ok()) << store.error().message();
  ASSERT_TRUE(store->defineNetwork("b", R"({"name": "b"})").ok());
  ASSERT_TRUE(store->defineNetwork("a", R"({"name": "a"})").ok());
  auto taken = store->defineNetwork("a", "{}");
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code(), kStoreNameTaken);
  auto all = store->networks();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "a");
  EXPECT_FALSE((*all)[0].active);

  StoredNetwork state{"a", "", true, true, 4242, 99};
  ASSERT_TRUE(store->saveNetworkState(state).ok());
  ASSERT_TRUE(store->updateNetworkJson("a", R"({"name": "a", "autostart": true})").ok());
  auto a = store->network("a");
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_TRUE((*a)->active);
  EXPECT_TRUE((*a)->created_bridge);
  EXPECT_EQ((*a)->dnsmasq_pid, 4242);
  EXPECT_EQ((*a)->dnsmasq_start_time, 99);
  EXPECT_EQ((*a)->json, R"({"name": "a", "autostart": true})");
  EXPECT_EQ(store->saveNetworkState(StoredNetwork{"zz", "", false, false, std::nullopt, std::nullopt}).error().code(), kStoreNotDefined);

  ASSERT_TRUE(store->addNetworkLease({"a", "52:54:00:00:00:01", "web1", "10.0.0.10"}).ok());
  ASSERT_TRUE(store->addNetworkLease({"a", "52:54:00:00:00:02", "web2", "10.0.0.11"}).ok());
  ASSERT_TRUE(store->addNetworkLease({"b", "52:54:00:00:00:01", "web1", "10.0.0.10"}).ok());  // another network
  EXPECT_FALSE(store->addNetworkLease({"a", "52:54:00:00:00:01", "web3", "10.0.0.12"}).ok());  // MAC taken
  EXPECT_FALSE(store->addNetworkLease({"a", "52:54:00:00:00:03", "web3", "10.0.0.11"}).ok());  // address taken
  auto dropped = store->dropVmLeases("web1");
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, (std::vector<std::string>{"a", "b"}));
  auto leases = store->networkLeases("a");
  ASSERT_TRUE(leases.ok());
  ASSERT_EQ(leases->size(), 1u);
  EXPECT_EQ((*leases)[0].vm, "web2");

  ASSERT_TRUE(store->undefineNetwork("a").ok());
  EXPECT_TRUE(store->networkLeases("a")->empty());  // the leases went with it
  EXPECT_EQ(store->undefineNetwork("a").error().code(), kStoreNotDefined);
}

}  // namespace
}  // namespace vmmd::daemon
