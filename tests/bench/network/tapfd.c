// tapfd: creates a tap device the way vmmd does for a NIC on a network (IFF_TAP | IFF_NO_PI |
// IFF_VNET_HDR | IFF_MULTI_QUEUE, not persistent: it goes away with its last descriptor, i.e. with
// the VMM), attaches it to a bridge, sets it up, and runs a command with the tap open as
// descriptor FD, for `-netdev tap,id=...,fd=FD`. Every VMM of the network benchmark gets its
// NIC this way, so they all see the same tap, bridge and vnet header.
//
//   tapfd TAP BRIDGE FD -- COMMAND ARGS...
//
// Static, libc only: it runs in the busybox initramfs of L1 (tests/bench/network/run.sh builds it).
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int die(const char *what, const char *name) {
  fprintf(stderr, "tapfd: %s %s: %s\n", what, name, strerror(errno));
  return 1;
}

static void set_name(struct ifreq *request, const char *name) {
  memset(request, 0, sizeof *request);
  strncpy(request->ifr_name, name, IFNAMSIZ - 1);
}

int main(int argc, char **argv) {
  if (argc < 6 || strcmp(argv[4], "--") != 0) {
    fprintf(stderr, "usage: tapfd TAP BRIDGE FD -- COMMAND ARGS...\n");
    return 2;
  }
  const char *tap = argv[1], *bridge = argv[2];
  int target = atoi(argv[3]);
  if (target < 3 || strlen(tap) >= IFNAMSIZ || strlen(bridge) >= IFNAMSIZ) {
    fprintf(stderr, "tapfd: FD must be 3 or more, names shorter than %d bytes\n", IFNAMSIZ);
    return 2;
  }

  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return die("open", "/dev/net/tun");
  struct ifreq request;
  set_name(&request, tap);
  request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE;
  if (ioctl(fd, TUNSETIFF, &request) < 0) return die("TUNSETIFF", tap);

  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return die("socket", "AF_INET");
  set_name(&request, tap);
  if (ioctl(sock, SIOCGIFINDEX, &request) < 0) return die("SIOCGIFINDEX", tap);
  int index = request.ifr_ifindex;
  set_name(&request, bridge);
  request.ifr_ifindex = index;
  if (ioctl(sock, SIOCBRADDIF, &request) < 0) return die("SIOCBRADDIF to", bridge);
  set_name(&request, tap);
  if (ioctl(sock, SIOCGIFFLAGS, &request) < 0) return die("SIOCGIFFLAGS", tap);
  request.ifr_flags |= IFF_UP;
  if (ioctl(sock, SIOCSIFFLAGS, &request) < 0) return die("SIOCSIFFLAGS up", tap);
  close(sock);

  // The VMM inherits the tap as `target`: a dup2 copy has no O_CLOEXEC; the tap opened as
  // `target` already (dup2 would do nothing) loses it here.
  if (fd == target) {
    if (fcntl(fd, F_SETFD, 0) < 0) return die("fcntl", tap);
  } else {
    if (dup2(fd, target) < 0) return die("dup2", tap);
    close(fd);
  }
  execvp(argv[5], argv + 5);
  return die("exec", argv[5]);
}
