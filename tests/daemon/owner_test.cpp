// VM owners: the access rule, the stored form of groups, and owners in the store (definitions made
// before the owner migration belong to root).
#include "daemon/access/owner.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "daemon/definition/definition_json.h"
#include "daemon/store/store.h"
#include "daemon/store/store_schema.h"
#include "tests/support/temp_dir.h"

namespace vmmd::daemon {
namespace {

TEST(Owner, RootMayAccessEveryVmOthersTheirOwnOnly) {
  Owner alice{1000, 1000, {1000, 4242}}, bob{1001, 4242, {4242}};
  EXPECT_TRUE(mayAccess(Owner::root(), alice));
  EXPECT_TRUE(mayAccess(alice, alice));
  EXPECT_TRUE(mayAccess(Owner{1000, 5, {}}, alice));  // the uid decides, not the groups of the day
  EXPECT_FALSE(mayAccess(bob, alice));                // a shared group gives no share
  EXPECT_FALSE(mayAccess(alice, Owner::root()));
  EXPECT_TRUE(Owner::root().isRoot());
  EXPECT_EQ(alice.describe(), "uid 1000");
}

TEST(Owner, GroupsRoundTripAndMalformedTextIsRefused) {
  EXPECT_EQ(formatGroups({}), "");
  EXPECT_EQ(formatGroups({10, 27, 4242}), "10,27,4242");
  EXPECT_EQ(parseGroups("10,27,4242"), (std::vector<gid_t>{10, 27, 4242}));
  EXPECT_EQ(parseGroups(""), std::vector<gid_t>{});
  for (const char* bad : {",", "1,", ",1", "1,,2", "x", "1 ,2", "-1", "99999999999"}) {
    EXPECT_FALSE(parseGroups(bad).has_value()) << bad;
  }
}

VmDefinition makeDefinition(const std::string& name) {
  auto def = parseDefinition(R"({"schema": 1, "name": ")" + name + R"(", "memory": 64, "kernel": "/k"})");
  EXPECT_TRUE(def.ok());
  return std::move(*def);
}

TEST(StoreOwners, OwnerIsStoredWithTheDefinition) {
  test_support::TempDir dir;
  Owner alice{1000, 1000, {1000, 4242}};
  {
    auto store = Store::open(dir.file("vmmd.db"));
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store->define(makeDefinition("a"), alice).ok());
    ASSERT_TRUE(store->define(makeDefinition("r")).ok());
  }
  auto store = Store::open(dir.file("vmmd.db"));
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store->definition("a"))->owner, alice);
  EXPECT_EQ((*store->definition("r"))->owner, Owner::root());
  auto all = store->definitions();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].owner, alice);
}

TEST(StoreOwners, DefinitionsFromBeforeOwnersBelongToRoot) {
  test_support::TempDir dir;
  std::string path = dir.file("vmmd.db");
  {
    auto db = sqlite::Database::open(path, true);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(migrateStore(*db, storeMigrations().first(2)).ok());
    ASSERT_TRUE(db->run("INSERT INTO definitions VALUES (?1, ?2, ?3, 1, 1)", std::string("old"), std::string("u-old"),
                        serializeDefinition(makeDefinition("old"))).ok());
  }
  auto store = Store::open(path);
  ASSERT_TRUE(store.ok()) << store.error().message();
  auto old = store->definition("old");
  ASSERT_TRUE(old.ok() && *old);
  EXPECT_EQ((*old)->owner, Owner::root());
}

TEST(StoreOwners, MalformedStoredGroupsAreNamed) {
  test_support::TempDir dir;
  std::string path = dir.file("vmmd.db");
  {
    auto store = Store::open(path);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store->define(makeDefinition("a"), Owner{1000, 1000, {1}}).ok());
  }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "UPDATE definitions SET owner_groups = '1,,x'", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  auto store = Store::open(path);
  ASSERT_TRUE(store.ok());
  auto got = store->definition("a");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().message(), "stored definition of vm 'a': malformed owner groups '1,,x'");
}

}  // namespace
}  // namespace vmmd::daemon
