// unixcat: a QMP client for L1's busybox shell, whose nc has no unix sockets.
//
//   unixcat [-t IDLE_SECONDS] SOCKET
//
// Connects to the unix socket SOCKET (retrying for 5 s while it does not exist yet), copies stdin
// to it and what comes back to stdout. Once stdin has ended it keeps reading until the peer
// closes or nothing has arrived for IDLE_SECONDS (default 2): a QMP monitor answers every
// command it was sent, then waits for more, so "quiet" is the end of the conversation.
// Exit status 0 if it connected, 1 otherwise. Static, libc only: it runs in L1's initramfs.
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "connect_unix.h"

static int write_all(int fd, const char *buf, ssize_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, (size_t)n);
    if (w < 0) return -1;
    buf += w;
    n -= w;
  }
  return 0;
}

int main(int argc, char **argv) {
  int idle_s = 2, opt;
  while ((opt = getopt(argc, argv, "t:")) != -1) {
    if (opt == 't') idle_s = atoi(optarg);
    else return 2;
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "usage: unixcat [-t IDLE_SECONDS] SOCKET\n");
    return 2;
  }
  int sock = connect_unix(argv[optind]);
  if (sock < 0) {
    perror(argv[optind]);
    return 1;
  }
  int stdin_open = 1;
  char buf[65536];
  for (;;) {
    struct pollfd fds[2] = {{.fd = sock, .events = POLLIN}, {.fd = stdin_open ? 0 : -1, .events = POLLIN}};
    int ready = poll(fds, 2, stdin_open ? -1 : idle_s * 1000);
    if (ready == 0) break;  // stdin done and the peer quiet
    if (ready < 0) return 1;
    if (fds[0].revents) {
      ssize_t n = read(sock, buf, sizeof buf);
      if (n <= 0 || write_all(1, buf, n) < 0) break;
    }
    if (fds[1].revents) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n <= 0) stdin_open = 0;
      else if (write_all(sock, buf, n) < 0) break;
    }
  }
  close(sock);
  return 0;
}
