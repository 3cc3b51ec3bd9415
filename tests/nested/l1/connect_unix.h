// connect_unix: shared by L1's static helpers (l1run, unixcat). Connects to the unix socket PATH,
// retrying every 10 ms for 5 s while the VMM has not made it yet (l1run times a VMM's start by
// it); the fd, or -1.
#ifndef NESTED_L1_CONNECT_UNIX_H
#define NESTED_L1_CONNECT_UNIX_H
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int connect_unix(const char *path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
  for (int tries = 0; tries < 500; tries++) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) return fd;
    close(fd);
    usleep(10000);
  }
  return -1;
}
#endif
