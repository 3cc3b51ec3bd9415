// openAsOwner and the definition's file check as the owner: what a non-root owner may and may not
// make vmmd open. Switching to another uid needs root; without it these tests skip (fail under CI).
#include "daemon/access/open_as_owner.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "daemon/access/definition_files.h"
#include "daemon/definition/definition_json.h"
#include "storage/qcow2.h"
#include "tests/support/cannot_run.h"
#include "tests/support/temp_dir.h"

namespace vmmd::daemon {
namespace {

constexpr uid_t kUser = 4242;
constexpr gid_t kUserGroup = 4242;
constexpr gid_t kSharedGroup = 4300;

const Owner kOwner{kUser, kUserGroup, {kUserGroup}};

class OpenAsOwnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) VMMD_CANNOT_RUN("taking another uid's credentials needs root");
    ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  }

  // A file with `mode`, owned by root:`gid`.
  std::string file(const std::string& name, mode_t mode, gid_t gid = 0) {
    std::string path = dir_.file(name);
    std::ofstream(path) << "contents of " << name << "\n";
    EXPECT_EQ(::chown(path.c_str(), 0, gid), 0);
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

  test_support::TempDir dir_;
};

TEST_F(OpenAsOwnerTest, OpensWhatTheOwnerMayOpen) {
  std::string readable = file("readable", 0644);
  auto fd = openAsOwner(kOwner, readable, O_RDONLY);
  ASSERT_TRUE(fd.ok()) << fd.error().message();
  char buffer[8] = {};
  EXPECT_EQ(::read(fd->get(), buffer, 8), 8);
  EXPECT_EQ(std::string(buffer, 8), "contents");
  EXPECT_TRUE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC);
}

TEST_F(OpenAsOwnerTest, RefusesWhatTheOwnerMayNotOpenNamingPathAndUid) {
  std::string secret = file("secret", 0600);
  auto fd = openAsOwner(kOwner, secret, O_RDONLY);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error().message(), secret + ": permission denied for uid 4242");
  EXPECT_EQ(fd.error().code(), EACCES);
  // Readable is not writable.
  std::string readable = file("readable", 0644);
  auto rw = openAsOwner(kOwner, readable, O_RDWR);
  ASSERT_FALSE(rw.ok());
  EXPECT_EQ(rw.error().message(), readable + ": permission denied for uid 4242");
  // Root opens both.
  EXPECT_TRUE(openAsOwner(Owner::root(), secret, O_RDWR).ok());
}

TEST_F(OpenAsOwnerTest, SupplementaryGroupsCount) {
  std::string shared = file("shared", 0640, kSharedGroup);
  EXPECT_FALSE(openAsOwner(kOwner, shared, O_RDONLY).ok());
  Owner member{kUser, kUserGroup, {kUserGroup, kSharedGroup}};
  EXPECT_TRUE(openAsOwner(member, shared, O_RDONLY).ok());
}

TEST_F(OpenAsOwnerTest, ASymlinkIsFollowedWithTheOwnersRights) {
  std::string secret = file("secret", 0600);
  std::string link = dir_.file("innocent.img");
  ASSERT_EQ(::symlink(secret.c_str(), link.c_str()), 0);
  auto fd = openAsOwner(kOwner, link, O_RDONLY);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error().message(), link + ": permission denied for uid 4242");
  // A folder the owner cannot search hides what is inside, whatever its mode.
  ASSERT_EQ(::mkdir(dir_.file("private").c_str(), 0700), 0);
  std::string inside = dir_.file("private/open.img");
  std::ofstream(inside) << "x";
  ASSERT_EQ(::chmod(inside.c_str(), 0666), 0);
  EXPECT_EQ(openAsOwner(kOwner, inside, O_RDONLY).error().code(), EACCES);
}

TEST_F(OpenAsOwnerTest, RefusesEveryFileThatIsNotAnImage) {
  std::string fifo = dir_.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0666), 0);
  // A FIFO without a writer would block an open for reading: it is refused before any open.
  auto fifo_fd = openAsOwner(kOwner, fifo, O_RDONLY);
  ASSERT_FALSE(fifo_fd.ok());
  EXPECT_EQ(fifo_fd.error().message(), fifo + ": a FIFO, not an image or kernel file");
  EXPECT_FALSE(openAsOwner(Owner::root(), fifo, O_RDONLY).ok());

  EXPECT_EQ(openAsOwner(kOwner, dir_.path(), O_RDONLY).error().message(), dir_.path() + ": a directory, not an image or kernel file");
  EXPECT_EQ(openAsOwner(kOwner, "/dev/null", O_RDWR).error().message(), "/dev/null: a character device, not an image or kernel file");
  EXPECT_FALSE(openAsOwner(Owner::root(), "/dev/null", O_RDWR).ok());

  std::string socket_path = dir_.file("sock");
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  socket_path.copy(address.sun_path, sizeof address.sun_path - 1);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::chmod(socket_path.c_str(), 0666), 0);
  EXPECT_EQ(openAsOwner(kOwner, socket_path, O_RDWR).error().message(), socket_path + ": a socket, not an image or kernel file");

  EXPECT_EQ(openAsOwner(kOwner, dir_.file("missing"), O_RDONLY).error().code(), ENOENT);
  EXPECT_EQ(openAsOwner(kOwner, file("new", 0666), O_RDWR | O_CREAT).error().code(), EINVAL);
}

TEST_F(OpenAsOwnerTest, BlockDevicesOnlyForRoot) {
  // A block node anyone may open by its mode (a loop device's numbers): still refused to non-root.
  std::string node = dir_.file("disk");
  ASSERT_EQ(::mknod(node.c_str(), S_IFBLK | 0666, makedev(7, 0)), 0);
  ASSERT_EQ(::chmod(node.c_str(), 0666), 0);
  auto fd = openAsOwner(kOwner, node, O_RDONLY);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error().message(), node + ": a block device: only root may use block devices");
  EXPECT_EQ(fd.error().code(), EPERM);
}

TEST_F(OpenAsOwnerTest, CredentialsNeverReachVmmdsOwnThreads) {
  std::string secret = file("secret", 0600);
  std::thread opener([&] {
    for (int i = 0; i < 20; ++i) EXPECT_FALSE(openAsOwner(kOwner, secret, O_RDONLY).ok());
  });
  for (int i = 0; i < 200; ++i) {
    uid_t r, e, s;
    ASSERT_EQ(::getresuid(&r, &e, &s), 0);
    EXPECT_EQ(r | e | s, 0u);
    EXPECT_EQ(::getgroups(0, nullptr), ::getgroups(0, nullptr));
    UniqueFd still_root(::open(secret.c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_TRUE(still_root);
  }
  opener.join();
  uid_t r, e, s;
  ASSERT_EQ(::getresuid(&r, &e, &s), 0);
  EXPECT_EQ(r | e | s, 0u);
}

TEST_F(OpenAsOwnerTest, FileOpenerBindsTheOwner) {
  auto opener = ownerFileOpener(kOwner);
  EXPECT_TRUE(opener(file("readable", 0644), O_RDONLY).ok());
  EXPECT_EQ(opener(file("secret", 0600), O_RDONLY).error().code(), EACCES);
}

class DefinitionFilesAsOwnerTest : public OpenAsOwnerTest {
 protected:
  // An image the owner owns.
  std::string qcow2(const std::string& name, const std::string& backing = "", const std::string& format = "") {
    std::string path = dir_.file(name);
    storage::Qcow2CreateOptions options;
    options.size = 1 << 20;
    options.backingFile = backing;
    options.backingFormat = format;
    EXPECT_TRUE(storage::createQcow2(path, options).ok());
    EXPECT_EQ(::chown(path.c_str(), kUser, kUserGroup), 0);
    return path;
  }

  VmDefinition definition(const std::string& disks_json) {
    std::string kernel = file("kernel", 0644);
    auto def = parseDefinition(R"({"schema": 1, "name": "v", "memory": 64, "kernel": ")" + kernel + R"(", "disks": )" + disks_json + "}");
    EXPECT_TRUE(def.ok()) << def.error().message();
    return std::move(*def);
  }
};

TEST_F(DefinitionFilesAsOwnerTest, ErrorsNameTheField) {
  std::string secret = file("shadow", 0600);
  auto st = checkDefinitionFilesAsOwner(definition(R"([{"path": ")" + secret + R"(", "format": "raw", "readonly": true}])"), kOwner);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), "disks[0].path: " + secret + ": permission denied for uid 4242");
  VmDefinition def = definition("[]");
  def.kernel = secret;
  EXPECT_EQ(checkDefinitionFilesAsOwner(def, kOwner).error().message(), "kernel: " + secret + ": permission denied for uid 4242");
  EXPECT_TRUE(checkDefinitionFilesAsOwner(def, Owner::root()).ok());
}

TEST_F(DefinitionFilesAsOwnerTest, BackingChainIsOpenedAsTheOwner) {
  std::string secret = file("shadow", 0600);
  std::string top = qcow2("top.qcow2", secret, "raw");
  auto st = checkDefinitionFilesAsOwner(definition(R"([{"path": ")" + top + R"(", "format": "qcow2"}])"), kOwner);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), "disks[0].path: " + top + ": backing file " + secret + ": permission denied for uid 4242");
  // Root's VM may use it.
  EXPECT_TRUE(checkDefinitionFilesAsOwner(definition(R"([{"path": ")" + top + R"(", "format": "qcow2"}])"), Owner::root()).ok());
}

TEST_F(DefinitionFilesAsOwnerTest, RelativeBackingNamesResolveAgainstTheImagesFolder) {
  ASSERT_EQ(::mkdir(dir_.file("images").c_str(), 0755), 0);
  std::string base = qcow2("images/base.qcow2");
  std::string middle = qcow2("images/middle.qcow2", "base.qcow2", "qcow2");
  std::string top = qcow2("top.qcow2", "images/middle.qcow2", "qcow2");
  std::string disks = R"([{"path": ")" + top + R"(", "format": "qcow2"}])";
  auto st = checkDefinitionFilesAsOwner(definition(disks), kOwner);
  EXPECT_TRUE(st.ok()) << st.error().message();
  // The bottom made unreadable to the owner: found through the chain, named by its resolved path.
  ASSERT_EQ(::chown(base.c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod(base.c_str(), 0600), 0);
  st = checkDefinitionFilesAsOwner(definition(disks), kOwner);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), "disks[0].path: " + middle + ": backing file " + dir_.file("images") + "/base.qcow2: permission denied for uid 4242");
}

TEST_F(DefinitionFilesAsOwnerTest, BackingWithoutFormatOrInALoopIsRefused) {
  std::string raw = dir_.file("base.raw");
  std::ofstream(raw) << std::string(4096, '\0');
  ASSERT_EQ(::chown(raw.c_str(), kUser, kUserGroup), 0);
  std::string unnamed = qcow2("unnamed.qcow2", raw, "");
  auto st = checkDefinitionFilesAsOwner(definition(R"([{"path": ")" + unnamed + R"(", "format": "qcow2"}])"), kOwner);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("does not name its format"), std::string::npos) << st.error().message();

  std::string a = qcow2("a.qcow2", "b.qcow2", "qcow2");
  qcow2("b.qcow2", "a.qcow2", "qcow2");
  st = checkDefinitionFilesAsOwner(definition(R"([{"path": ")" + a + R"(", "format": "qcow2"}])"), kOwner);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("backing file loop"), std::string::npos) << st.error().message();
}


// A persistent tap on the host, made with ip(8) and removed at the end of the test.
class HostTap {
 public:
  HostTap(const std::string& name, const std::string& who) : name_(name) {
    ok_ = std::system(("ip tuntap add " + name + " mode tap " + who + " 2>/dev/null").c_str()) == 0;
  }
  ~HostTap() {
    if (ok_ && std::system(("ip tuntap del " + name_ + " mode tap").c_str()) != 0) ADD_FAILURE() << "ip tuntap del " << name_;
  }
  bool ok() const { return ok_; }

 private:
  std::string name_;
  bool ok_ = false;
};

// vmmd attaches taps with CAP_NET_ADMIN; a non-root owner gets only those the kernel would let it
// attach itself: its uid's or its group's taps.
TEST_F(DefinitionFilesAsOwnerTest, TapsOnlyOfTheOwnersUidOrGroup) {
  std::string suffix = std::to_string(::getpid() % 100000);
  HostTap root_tap("vmtr" + suffix, ""), user_tap("vmtu" + suffix, "user 4242"), group_tap("vmtg" + suffix, "group 4300");
  ASSERT_TRUE(root_tap.ok() && user_tap.ok() && group_tap.ok()) << "ip tuntap add";
  auto with_nic = [&](const std::string& ifname) {
    VmDefinition def = definition("[]");
    def.nics.push_back(NicSpec{ifname, "52:54:00:12:34:56", ""});
    return def;
  };
  auto refused = checkTapsAsOwner(with_nic("vmtr" + suffix), kOwner);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("nics[0].ifname: tap vmtr" + suffix + ": permission denied for uid 4242"), std::string::npos)
      << refused.error().message();
  EXPECT_TRUE(checkTapsAsOwner(with_nic("vmtr" + suffix), Owner::root()).ok());
  EXPECT_TRUE(checkTapsAsOwner(with_nic("vmtu" + suffix), kOwner).ok());
  EXPECT_FALSE(checkTapsAsOwner(with_nic("vmtg" + suffix), kOwner).ok());
  EXPECT_TRUE(checkTapsAsOwner(with_nic("vmtg" + suffix), Owner{kUser, kUserGroup, {kUserGroup, kSharedGroup}}).ok());
  EXPECT_TRUE(checkTapsAsOwner(with_nic("vmtnone" + suffix), kOwner).ok()) << "a tap made later is the start's to attach";
}

}  // namespace
}  // namespace vmmd::daemon
