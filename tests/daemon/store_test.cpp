#include "daemon/store/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "daemon/definition/definition_json.h"
#include "daemon/store/store_schema.h"
#include "tests/support/temp_dir.h"

namespace vmmd::daemon {
namespace {

VmDefinition makeDefinition(const std::string& name, uint64_t memory = 64) {
  auto def = parseDefinition(R"({"schema": 1, "name": ")" + name + R"(", "memory": )" + std::to_string(memory) +
                             R"(, "kernel": "/k", "nics": [{"ifname": "tap-)" + name + R"("}]})");
  EXPECT_TRUE(def.ok()) << def.error().message();
  return std::move(*def);
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs SQL on a file with the plain sqlite3 API, as another program would.
void rawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* message = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message), SQLITE_OK) << (message ? message : "");
  sqlite3_free(message);
  sqlite3_close(db);
}

TEST(Store, NewFileGetsTheLatestSchemaInWalMode) {
  test_support::TempDir dir;
  std::string path = dir.file("vmmd.db");
  {
    auto store = Store::open(path);
    ASSERT_TRUE(store.ok()) << store.error().message();
  }
  auto db = sqlite::Database::open(path, false);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(*db->queryInt("PRAGMA user_version"), latestStoreVersion());
  EXPECT_EQ(*db->queryInt("PRAGMA application_id"), kStoreApplicationId);
  auto mode = db->prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode.ok());
  ASSERT_TRUE(*mode->step());
  EXPECT_EQ(mode->columnText(0), "wal");
}

TEST(Store, EmptyExistingFileIsInitialized) {
  test_support::TempDir dir;
  std::ofstream(dir.file("vmmd.db")).close();
  auto store = Store::open(dir.file("vmmd.db"));
  ASSERT_TRUE(store.ok()) << store.error().message();
  EXPECT_TRUE(store->define(makeDefinition("a")).ok());
}

TEST(Store, DefinitionsRoundTripAcrossReopen) {
  test_support::TempDir dir;
  VmDefinition web = makeDefinition("web1", 512);
  VmDefinition db = makeDefinition("db1", 1024);
  {
    auto store = Store::open(dir.file("vmmd.db"));
    ASSERT_TRUE(store.ok()) << store.error().message();
    ASSERT_TRUE(store->define(web).ok());
    ASSERT_TRUE(store->define(db).ok());
  }
  auto store = Store::open(dir.file("vmmd.db"));
  ASSERT_TRUE(store.ok()) << store.error().message();
  auto got = store->definition("web1");
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->definition, web);
  EXPECT_GT((*got)->created_us, 0);
  EXPECT_EQ((*got)->created_us, (*got)->updated_us);
  auto all = store->definitions();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].definition, db);  // by name
  EXPECT_EQ((*all)[1].definition, web);
  auto missing = store->definition("nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TEST(Store, DuplicatesAreRefusedByName) {
  test_support::TempDir dir;
  auto store = Store::open(dir.file("vmmd.db"));
  ASSERT_TRUE(store.ok());
  VmDefinition web = makeDefinition("web1");
  ASSERT_TRUE(store->define(web).ok());
  EXPECT_EQ(store->define(makeDefinition("web1")).error().message(), "vm 'web1' is already defined");
  EXPECT_EQ(store->define(makeDefinition("web1")).error().code(), kStoreNameTaken);
  VmDefinition clone = makeDefinition("web2");
  clone.uuid = web.uuid;
  EXPECT_EQ(store->define(clone).error().message(), "uuid " + web.uuid + " is already used by vm 'web1'");
  EXPECT_EQ(store->define(clone).error().code(), kStoreUuidTaken);
  EXPECT_EQ(store->definitions()->size(), 1u);  // the failed defines left nothing behind
  EXPECT_EQ(store->events()->size(), 1u);       // not even an event
}

TEST(Store, TwoConnectionsSeeEachOthersCommits) {
  test_support::TempDir dir;
  auto first = Store::open(dir.file("vmmd.db"));
  auto second = Store::open(dir.file("vmmd.db"));
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(first->define(makeDefinition("a")).ok());
  ASSERT_TRUE(second->define(makeDefinition("b")).ok());
  EXPECT_EQ(first->define(makeDefinition("b")).error().message(), "vm 'b' is already defined");
  EXPECT_EQ(first->definitions()->size(), 2u);
}

TEST(Store, UnreadableStoredDefinitionIsNamed) {
  test_support::TempDir dir;
  std::string path = dir.file("vmmd.db");
  {
    auto store = Store::open(path);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store->define(makeDefinition("web1")).ok());
  }
  rawExec(path, R"(UPDATE definitions SET json = '{"schema": 7}')");
  auto store = Store::open(path);
  ASSERT_TRUE(store.ok());
  auto all = store->definitions();
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.error().message(),
            "stored definition of vm 'web1': schema: version 7 is newer than this vmmd understands (1)");
  EXPECT_FALSE(store->definition("web1").ok());
}

TEST(Store, DefineAndUndefine) {
  test_support::TempDir dir;
  auto store = Store::open(dir.file("vmmd.db"));
  ASSERT_TRUE(store.ok());
  VmDefinition web = makeDefinition("web1");
  ASSERT_TRUE(store->define(web).ok());

  RuntimeRecord record;
  record.name = "web1";
  record.state = VmState::kRunning;
  record.pid = 42;
  ASSERT_TRUE(store->saveRuntime(record).ok());
  ASSERT_TRUE(store->undefine("web1").ok());
  EXPECT_FALSE(store->definition("web1")->has_value());
  EXPECT_FALSE(store->runtime("web1")->has_value());  // cascaded
  EXPECT_EQ(store->undefine("web1").error().message(), "vm 'web1' is not defined");
  EXPECT_EQ(store->undefine("web1").error().code(), kStoreNotDefined);
  // The name is free again, and the history remembers all of it.
  ASSERT_TRUE(store->define(makeDefinition("web1")).ok());
  auto events = store->events({.vm = "web1"});
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].kind, "defined");
  EXPECT_EQ((*events)[0].detail, web.uuid);
  EXPECT_EQ((*events)[1].kind, "undefined");
  EXPECT_EQ((*events)[2].kind, "defined");
}

TEST(Store, RuntimeRoundTripWithEvent) {
  test_support::TempDir dir;
  auto store = Store::open(dir.file("vmmd.db"));
  ASSERT_TRUE(store.ok());
  RuntimeRecord record{.name = "web1", .state = VmState::kRunning, .pid = 4242, .start_time = 987654,
                       .started_us = 1700000000000000, .qmp_socket = "/run/vmmd/vms/web1/qmp.sock", .console_socket = "/run/vmmd/vms/web1/console.sock",
                       .qga_socket = std::nullopt, .exit_status = std::nullopt, .exit_signal = 9, .restart_count = 3,
                       .stop_deadline_us = std::nullopt, .boot_id = std::nullopt,
                       .worker_exe = std::nullopt};
  EXPECT_EQ(store->saveRuntime(record).error().message(), "vm 'web1' is not defined");
  EXPECT_EQ(store->saveRuntime(record).error().code(), kStoreNotDefined);
  ASSERT_TRUE(store->define(makeDefinition("web1")).ok());
  ASSERT_TRUE(store->saveRuntime(record, EventDraft{"state", "shut-off -> running"}).ok());
  auto got = store->runtime("web1");
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_TRUE(got->has_value());
  EXPECT_GT((*got)->updated_us, 0);
  record.updated_us = (*got)->updated_us;
  EXPECT_EQ(**got, record);

  record.state = VmState::kShutoff;
  record.pid.reset();
  record.exit_status = 0;
  ASSERT_TRUE(store->saveRuntime(record).ok());
  auto all = store->runtimes();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].state, VmState::kShutoff);
  EXPECT_FALSE((*all)[0].pid.has_value());
  EXPECT_EQ((*all)[0].exit_status, 0);

  auto events = store->events({.vm = "web1"});
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[1].kind, "state");
  EXPECT_EQ((*events)[1].detail, "shut-off -> running");
}

// Version 2 keeps a stop in progress (intent, deadline) and the worker's boot id; a version-1
// file is upgraded in place and its runtime rows read back with no intent.
TEST(Store, Version1RuntimeRowsGainStopIntentsAndBootId) {
  test_support::TempDir dir;
  std::string path = dir.file("vmmd.db");
  {
    auto db = sqlite::Database::open(path, true);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(migrateStore(*db, storeMigrations().first(1)).ok());
  }
  rawExec(path, "INSERT INTO definitions VALUES ('web1', 'u1', '{}', 1, 1);"
                "INSERT INTO runtime (name, state, pid, start_time, restart_count, updated_us) VALUES ('web1', 'shutting-down', 4242, 99, 0, 1);");
  auto store = Store::open(path);
  ASSERT_TRUE(store.ok()) << store.error().message();
  auto old = store->runtime("web1");
  ASSERT_TRUE(old.ok() && *old) << (old.ok() ? "no row" : old.error().message());
  EXPECT_EQ((*old)->pid, 4242);
  EXPECT_EQ((*old)->stop_intent, StopIntent::kNone);
  EXPECT_FALSE((*old)->stop_deadline_us);
  EXPECT_FALSE((*old)->boot_id);

  RuntimeRecord record = **old;
  record.stop_intent = StopIntent::kShutdownAcpi;
  record.stop_deadline_us = 1700000060000000;
  record.stop_timeout_s = 60;
  record.stop_force = true;
  record.boot_id = "3d7c0b3e-0a1e-4f6e-9a4e-5b1c2d3e4f50";
  record.worker_exe = "/usr/lib/vmmd/vmm";
  ASSERT_TRUE(store->saveRuntime(record).ok());
  auto got = store->runtime("web1");
  ASSERT_TRUE(got.ok() && *got);
  record.updated_us = (*got)->updated_us;
  EXPECT_EQ(**got, record);
  record.stop_intent = StopIntent::kDestroy;
  ASSERT_TRUE(store->saveRuntime(record).ok());
  EXPECT_EQ((*store->runtime("web1"))->stop_intent, StopIntent::kDestroy);
}

TEST(Store, EventsPageAndStayBounded) {
  test_support::TempDir dir;
  auto store = Store::open(dir.file("vmmd.db"), {.max_events = 10});
  ASSERT_TRUE(store.ok());
  for (int i = 0; i < 25; ++i) {
    auto id = store->appendEvent(i % 2 ? "odd" : "even", {"tick", std::to_string(i)});
    ASSERT_TRUE(id.ok()) << id.error().message();
    EXPECT_EQ(*id, i + 1);
  }
  auto all = store->events();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 10u);
  EXPECT_EQ(all->front().detail, "15");
  EXPECT_EQ(all->back().detail, "24");
  auto page = store->events({.vm = "odd", .after_id = 20, .limit = 1});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ(page->front().detail, "21");
  EXPECT_EQ(page->front().vm, "odd");
}

TEST(Store, ForeignDatabaseIsRefusedAndUntouched) {
  test_support::TempDir dir;
  std::string path = dir.file("other.db");
  rawExec(path, "CREATE TABLE photos (id INTEGER PRIMARY KEY, title TEXT); INSERT INTO photos VALUES (1, 'cat');");
  std::string before = readFile(path);
  auto store = Store::open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().message(),
            path + ": not a vmmd database (application_id 0x00000000, tables: photos); refusing to touch it");
  EXPECT_EQ(readFile(path), before);
}

TEST(Store, OtherApplicationIdIsRefused) {
  test_support::TempDir dir;
  std::string path = dir.file("other.db");
  rawExec(path, "PRAGMA application_id = 1234;");
  auto store = Store::open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().message(),
            path + ": not a vmmd database (application_id 0x000004d2, tables: none); refusing to touch it");
}

TEST(Store, NewerSchemaIsRefused) {
  test_support::TempDir dir;
  std::string path = dir.file("vmmd.db");
  ASSERT_TRUE(Store::open(path).ok());
  rawExec(path, "PRAGMA user_version = 99;");
  auto store = Store::open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().message(), path + ": database schema version 99 is newer than this vmmd supports (" +
                                         std::to_string(latestStoreVersion()) + "); was it written by a newer vmmd?");
}

TEST(Store, GarbageFileIsRefusedAndUntouched) {
  test_support::TempDir dir;
  std::string path = dir.file("vmmd.db");
  std::string garbage;
  for (int i = 0; i < 8192; ++i) garbage += static_cast<char>((i * 7919 + 13) & 0xff);
  std::ofstream(path, std::ios::binary) << garbage;
  auto store = Store::open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message().find("file is not a database"), std::string::npos) << store.error().message();
  EXPECT_NE(store.error().message().find("refusing to touch it"), std::string::npos) << store.error().message();
  EXPECT_EQ(readFile(path), garbage);
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
}

TEST(Store, CorruptPagesAreRefusedAndUntouched) {
  test_support::TempDir dir;
  std::string path = dir.file("vmmd.db");
  {
    auto store = Store::open(path);
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(store->define(makeDefinition("vm" + std::to_string(i))).ok());
  }
  // Checkpoint the WAL into the main file, then scribble over the second page (a b-tree page).
  rawExec(path, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;");
  std::string bytes = readFile(path);
  ASSERT_GT(bytes.size(), 3 * 4096u);
  for (size_t i = 4096; i < 2 * 4096; ++i) bytes[i] = static_cast<char>(0xA5 ^ (i & 0xff));
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  auto store = Store::open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message().find("corrupt"), std::string::npos) << store.error().message();
  EXPECT_EQ(readFile(path), bytes);
}

TEST(Store, UnreadablePathIsAClearError) {
  auto store = Store::open("/nonexistent-dir/vmmd.db");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().message(), "open /nonexistent-dir/vmmd.db: unable to open database file");
}

// Migration mechanics on a made-up history: steps apply in order, each atomically.
TEST(StoreSchema, MigratesStepByStepAndAtomically) {
  test_support::TempDir dir;
  std::string path = dir.file("m.db");
  const std::array<Migration, 1> v1 = {{{1, "t", "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);"}}};
  const std::array<Migration, 2> v2 = {{v1[0], {2, "t.y", "ALTER TABLE t ADD COLUMN y INTEGER DEFAULT 7;"}}};
  const std::array<Migration, 3> broken = {{v2[0], v2[1], {3, "bad", "UPDATE t SET x = 2; SELECT * FROM nowhere;"}}};
  auto db = sqlite::Database::open(path, true);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(checkStoreFile(*db, v1).ok());
  ASSERT_TRUE(migrateStore(*db, v1).ok());
  EXPECT_EQ(*db->queryInt("PRAGMA user_version"), 1);
  ASSERT_TRUE(checkStoreFile(*db, v2).ok());
  ASSERT_TRUE(migrateStore(*db, v2).ok());
  EXPECT_EQ(*db->queryInt("PRAGMA user_version"), 2);
  EXPECT_EQ(*db->queryInt("SELECT x + y FROM t"), 8);  // the v1 row kept, the v2 default added
  ASSERT_TRUE(migrateStore(*db, v2).ok());              // nothing left to do
  auto failed = migrateStore(*db, broken);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message().find("migration 3 (bad): "), std::string::npos) << failed.error().message();
  EXPECT_EQ(*db->queryInt("PRAGMA user_version"), 2);  // rolled back as a whole
  EXPECT_EQ(*db->queryInt("SELECT x FROM t"), 1);
  EXPECT_EQ(checkStoreFile(*db, v1).error().message(),
            "database schema version 2 is newer than this vmmd supports (1); was it written by a newer vmmd?");
}

// Version 4 adds snapshots: a version-3 file is upgraded in place; a snapshot belongs to a defined
// VM, its tag is unique per VM, and it goes with the VM's definition.
TEST(Store, Version3FileGainsSnapshotsThatGoWithTheirVm) {
  test_support::TempDir dir;
  std::string path = dir.file("vmmd.db");
  {
    auto db = sqlite::Database::open(path, true);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(migrateStore(*db, storeMigrations().first(3)).ok());
  }
  rawExec(path, "INSERT INTO definitions (name, uuid, json, created_us, updated_us) VALUES ('web1', 'u1', '{}', 1, 1);");
  auto store = Store::open(path);
  ASSERT_TRUE(store.ok()) << store.error().message();
  auto none = store->snapshots("web1");
  ASSERT_TRUE(none.ok()) << none.error().message();
  EXPECT_TRUE(none->empty());

  SnapshotRecord first{"web1", "before-upgrade", 1700000000000000, "/var/lib/vmmd/snapshots/web1/before-upgrade.state", 4096,
                       {"disk0", "data"}};
  ASSERT_TRUE(store->addSnapshot(first).ok());
  SnapshotRecord second = first;
  second.tag = "after";
  second.created_us += 1;
  second.disks = {"disk0"};
  ASSERT_TRUE(store->addSnapshot(second).ok());
  auto again = store->addSnapshot(first);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), kStoreNameTaken);
  EXPECT_EQ(again.error().message(), "vm 'web1' has a snapshot 'before-upgrade' already");
  SnapshotRecord orphan = first;
  orphan.vm = "nobody";
  EXPECT_EQ(store->addSnapshot(orphan).error().code(), kStoreNotDefined);

  auto all = store->snapshots("web1");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0], first);
  EXPECT_EQ((*all)[1], second);
  auto one = store->snapshot("web1", "after");
  ASSERT_TRUE(one.ok() && *one);
  EXPECT_EQ(**one, second);

  ASSERT_TRUE(store->removeSnapshot("web1", "after").ok());
  EXPECT_EQ(store->removeSnapshot("web1", "after").error().code(), kStoreNotDefined);
  EXPECT_FALSE(*store->snapshot("web1", "after"));
  auto events = store->events({.vm = "web1"});
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[2].detail, "deleted after");

  ASSERT_TRUE(store->undefine("web1").ok());
  EXPECT_TRUE(store->snapshots("web1")->empty());
}

// A VM defined by an incoming migration is marked until it arrives.
TEST(Store, ArrivingMarkIsKeptUntilCleared) {
  test_support::TempDir dir;
  auto store = Store::open(dir.file("vmmd.db"));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(store->define(makeDefinition("a")).ok());
  ASSERT_TRUE(store->define(makeDefinition("b")).ok());
  EXPECT_TRUE(store->arrivingVms()->empty());
  ASSERT_TRUE(store->setArriving("b", true).ok());
  EXPECT_EQ(*store->arrivingVms(), std::vector<std::string>{"b"});
  ASSERT_TRUE(store->setArriving("b", false).ok());
  EXPECT_TRUE(store->arrivingVms()->empty());
  EXPECT_EQ(store->setArriving("nobody", true).error().code(), kStoreNotDefined);
}

}  // namespace
}  // namespace vmmd::daemon
