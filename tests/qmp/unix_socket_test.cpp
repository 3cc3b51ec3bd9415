#include "qmp/unix_socket.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace vmmd::qmp {
namespace {

class UnixSocketTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.file(name); }

  test_support::TempDir dir_;  // removed with everything in it
};

bool hasFlag(int fd, int get, int flag) { return (::fcntl(fd, get) & flag) != 0; }

TEST(UnixAddress, FitsAPathWithItsNul) {
  std::string longest(sizeof(sockaddr_un{}.sun_path) - 1, 'a');
  auto address = unixAddress(longest);
  ASSERT_TRUE(address.ok()) << address.error().message();
  EXPECT_EQ(address->address.sun_family, AF_UNIX);
  EXPECT_EQ(address->length, offsetof(sockaddr_un, sun_path) + longest.size() + 1);
  EXPECT_EQ(std::string(address->address.sun_path), longest);
}

TEST(UnixAddress, RefusesWhatDoesNotFitNamingIt) {
  std::string too_long = "/" + std::string(sizeof(sockaddr_un{}.sun_path) - 1, 'b');
  auto address = unixAddress(too_long);
  ASSERT_FALSE(address.ok());
  EXPECT_EQ(address.error().code(), ENAMETOOLONG);
  EXPECT_EQ(address.error().message(), "socket path " + too_long + " is too long (108 bytes; at most 107)");
  EXPECT_FALSE(unixAddress("").ok());
}

TEST(UnixAddress, AtNamesAnAbstractSocket) {
  auto address = unixAddress("@vmmd/notify");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->address.sun_path[0], '\0');
  EXPECT_EQ(std::string(address->address.sun_path + 1, 11), "vmmd/notify");
  EXPECT_EQ(address->length, offsetof(sockaddr_un, sun_path) + 12);  // no NUL counted
}

TEST_F(UnixSocketTest, ListenConnectAndPeerCredentials) {
  auto listener = listenUnix(path("s.sock"));
  ASSERT_TRUE(listener.ok()) << listener.error().message();
  EXPECT_TRUE(hasFlag(listener->get(), F_GETFD, FD_CLOEXEC));
  EXPECT_TRUE(hasFlag(listener->get(), F_GETFL, O_NONBLOCK));
  EXPECT_EQ(boundPath(listener->get()), path("s.sock"));
  auto client = connectUnix(path("s.sock"));
  ASSERT_TRUE(client.ok()) << client.error().message();
  EXPECT_TRUE(hasFlag(client->get(), F_GETFD, FD_CLOEXEC));
  EXPECT_FALSE(hasFlag(client->get(), F_GETFL, O_NONBLOCK));
  UniqueFd accepted(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted);
  auto peer = peerCredentials(accepted.get());
  ASSERT_TRUE(peer.ok()) << peer.error().message();
  EXPECT_EQ(peer->pid, ::getpid());
  EXPECT_EQ(peer->uid, ::getuid());
  EXPECT_EQ(peer->gid, ::getgid());
  EXPECT_EQ(peer->describe(), "uid=" + std::to_string(::getuid()) + " gid=" + std::to_string(::getgid()) +
                                  " pid=" + std::to_string(::getpid()));
}

TEST_F(UnixSocketTest, ModeHoldsFromTheBind) {
  auto listener = listenUnix(path("private.sock"), 4, 0600);
  ASSERT_TRUE(listener.ok()) << listener.error().message();
  struct stat st {};
  ASSERT_EQ(::stat(path("private.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(UnixSocketTest, ReplacesASocketNobodyListensOn) {
  // A listener that is gone leaves its socket file behind: connecting is refused, binding fails.
  { ASSERT_TRUE(listenUnix(path("stale.sock")).ok()); }
  auto refused = connectUnix(path("stale.sock"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ECONNREFUSED);
  auto listener = listenUnix(path("stale.sock"));
  ASSERT_TRUE(listener.ok()) << listener.error().message();
  EXPECT_TRUE(connectUnix(path("stale.sock")).ok());
}

TEST_F(UnixSocketTest, RefusesASocketInUse) {
  auto first = listenUnix(path("busy.sock"));
  ASSERT_TRUE(first.ok());
  auto second = listenUnix(path("busy.sock"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), EADDRINUSE);
  EXPECT_EQ(second.error().message(), path("busy.sock") + " is in use: a process is listening on it");
  EXPECT_TRUE(connectUnix(path("busy.sock")).ok());  // the first one still has it
}

TEST_F(UnixSocketTest, NeverRemovesAnythingButASocket) {
  std::ofstream(path("data")) << "precious";
  auto listener = listenUnix(path("data"));
  ASSERT_FALSE(listener.ok());
  EXPECT_EQ(listener.error().message(), path("data") + " exists and is not a socket");
  std::ifstream in(path("data"));
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "precious");
  ASSERT_EQ(::symlink(path("data").c_str(), path("link.sock").c_str()), 0);
  EXPECT_FALSE(removeStaleSocket(path("link.sock")).ok());  // a symlink is not followed
  EXPECT_TRUE(std::filesystem::is_symlink(path("link.sock")));
}

TEST_F(UnixSocketTest, SaysWhichDirectoryIsMissing) {
  auto listener = listenUnix(path("none/s.sock"));
  ASSERT_FALSE(listener.ok());
  EXPECT_EQ(listener.error().message(), "socket " + path("none/s.sock") + ": directory " + path("none") +
                                            ": No such file or directory");
  auto absent = connectUnix(path("none/s.sock"));
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().code(), ENOENT);
}

TEST_F(UnixSocketTest, NonBlockingConnectToAFullQueueIsEagain) {
  auto listener = listenUnix(path("full.sock"), 0);
  ASSERT_TRUE(listener.ok());
  std::vector<UniqueFd> queued;
  Result<UniqueFd> next = connectUnix(path("full.sock"), true);
  for (int i = 0; next.ok() && i < 8; ++i) {
    queued.push_back(std::move(*next));
    next = connectUnix(path("full.sock"), true);
  }
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.error().code(), EAGAIN);
}

TEST_F(UnixSocketTest, AdoptsOnlyAListeningUnixStreamSocket) {
  auto listener = listenUnix(path("passed.sock"));
  ASSERT_TRUE(listener.ok());
  // As a child gets it from its parent: inherited, blocking, not close-on-exec.
  int inherited = ::dup(listener->get());
  ASSERT_GE(inherited, 0);
  ::fcntl(inherited, F_SETFL, ::fcntl(inherited, F_GETFL) & ~O_NONBLOCK);
  auto adopted = adoptListeningUnix(inherited);
  ASSERT_TRUE(adopted.ok()) << adopted.error().message();
  EXPECT_EQ(adopted->get(), inherited);
  EXPECT_TRUE(hasFlag(inherited, F_GETFD, FD_CLOEXEC));
  EXPECT_TRUE(hasFlag(inherited, F_GETFL, O_NONBLOCK));
  EXPECT_EQ(boundPath(inherited), path("passed.sock"));

  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd pipe_read(pipe_fds[0]), pipe_write(pipe_fds[1]);
  auto not_socket = adoptListeningUnix(pipe_fds[0]);
  ASSERT_FALSE(not_socket.ok());
  EXPECT_EQ(not_socket.error().message(), "fd " + std::to_string(pipe_fds[0]) + " is not a Unix stream socket");
  EXPECT_GE(::fcntl(pipe_fds[0], F_GETFD), 0);  // left open for its owner

  auto connected = connectUnix(path("passed.sock"));
  ASSERT_TRUE(connected.ok());
  auto not_listening = adoptListeningUnix(connected->get());
  ASSERT_FALSE(not_listening.ok());
  EXPECT_EQ(not_listening.error().message(), "fd " + std::to_string(connected->get()) + " is a socket that is not listening");

  auto closed = adoptListeningUnix(1000);
  ASSERT_FALSE(closed.ok());
  EXPECT_EQ(closed.error().code(), EBADF);
}

}  // namespace
}  // namespace vmmd::qmp
