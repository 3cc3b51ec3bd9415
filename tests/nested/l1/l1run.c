// l1run: runs an L2 VMM inside L1 and timestamps its console.
//
//   l1run [-t SECONDS] [-m MARKER] [-k COUNT] [-x ABORT] [-o LOG]
//         [-s SOCKET -T TRIGGER [-w TEXT | -S SEND_FILE] [-R RECV_FILE] [-D SECONDS]] -- COMMAND ARGS...
//
// The command's stdout and stderr go to LOG (default /dev/null), one line each, prefixed with the
// milliseconds since launch (CLOCK_MONOTONIC) at which the line was complete; '\r' is dropped.
// -m MARKER counts lines containing MARKER; -k COUNT kills the command (SIGKILL) once COUNT
// marker lines were seen; -x kills it at the first line containing ABORT (e.g. QEMU's
// "emulation failure", after which it would sit paused); -t kills it after SECONDS.
// -s/-T/-w: at the first console line containing TRIGGER, connects to the unix socket SOCKET
// (e.g. the VMM's QMP or a guest-agent chardev), writes TEXT and a newline, and logs what comes
// back as "<ms> SOCK <line>" until the command exits. An empty TRIGGER connects at launch (as soon
// as the socket exists: a QMP client that sees the VMM's events from the start, e.g. RESUME). -S streams SEND_FILE's bytes instead of
// TEXT (no newline), as fast as the socket takes them while reading goes on, so both directions
// flow at once; -R writes what comes back to RECV_FILE, raw, instead of logging it. -D reads
// nothing from the socket for SECONDS after connecting (a host end that stalls: the VMM must
// hold the guest back, not buffer), logging the command's VmRSS as "SOCK-STALL rss_kb=N" when
// the stall begins and "SOCK-RESUME rss_kb=N" when it ends.
// On exit, prints shell assignments:
//   RUN_EXIT=<status, or 128+signal> RUN_MS=<launch -> exit> RUN_MARKER_MS=<launch -> first
//   marker line, -1 if none> RUN_MARKERS=<count> RUN_TIMEOUT=0|1 RUN_KILLED=0|1 RUN_ABORTED=0|1
// Static, libc only: it runs in the busybox initramfs of L1.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "connect_unix.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// VmRSS of a process in kB, -1 if unreadable.
static long rss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long kb = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
  }
  fclose(f);
  return kb;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

// What the lines seen so far have told.
struct state {
  FILE *log;
  double t;            // ms since launch, for the bytes being fed
  const char *prefix;  // "" for the console, "SOCK " for the socket
  const char *marker, *abort_on, *trigger;
  long markers;
  double marker_ms;
  int aborted, triggered;
};

static void on_line(struct state *st, const char *line) {
  fprintf(st->log, "%.1f %s%s\n", st->t, st->prefix, line);
  if (st->prefix[0]) return;  // socket lines are only logged
  if (st->marker && strstr(line, st->marker) && st->markers++ == 0) st->marker_ms = st->t;
  if (st->abort_on && strstr(line, st->abort_on)) st->aborted = 1;
  if (st->trigger && !st->triggered && strstr(line, st->trigger)) st->triggered = 1;
}

// Splits a byte stream into lines ('\r' dropped; overlong lines truncated).
struct liner {
  char line[8192];
  size_t len;
};

static void feed(struct liner *l, const char *buf, ssize_t n, struct state *st) {
  for (ssize_t i = 0; i < n; i++) {
    char c = buf[i];
    if (c == '\r') continue;
    if (c != '\n') {
      if (l->len < sizeof l->line - 1) l->line[l->len++] = c;
      continue;
    }
    l->line[l->len] = 0;
    on_line(st, l->line);
    l->len = 0;
  }
}

int main(int argc, char **argv) {
  double timeout_s = 120;
  const char *log_path = "/dev/null", *sock_path = NULL, *sock_text = "", *send_path = NULL, *recv_path = NULL;
  double stall_s = 0, stall_until = 0;
  struct state st = {.prefix = "", .marker_ms = -1};
  long kill_after = 0;
  int opt;
  while ((opt = getopt(argc, argv, "+t:m:k:x:o:s:T:w:S:R:D:")) != -1) {
    switch (opt) {
      case 't': timeout_s = atof(optarg); break;
      case 'm': st.marker = optarg; break;
      case 'k': kill_after = atol(optarg); break;
      case 'x': st.abort_on = optarg; break;
      case 'o': log_path = optarg; break;
      case 's': sock_path = optarg; break;
      case 'T': st.trigger = optarg; break;
      case 'w': sock_text = optarg; break;
      case 'S': send_path = optarg; break;
      case 'R': recv_path = optarg; break;
      case 'D': stall_s = atof(optarg); break;
      default:
        fprintf(stderr, "usage: l1run [-t S] [-m MARKER] [-k N] [-x ABORT] [-o LOG] "
                        "[-s SOCK -T TRIGGER [-w TEXT | -S FILE] [-R FILE] [-D S]] -- CMD...\n");
        return 2;
    }
  }
  if (optind >= argc) {
    fprintf(stderr, "l1run: no command\n");
    return 2;
  }
  if (!sock_path) st.trigger = NULL;
  if (st.trigger && !*st.trigger) st.triggered = 1;  // -T '': at launch
  st.log = fopen(log_path, "w");
  if (!st.log) {
    perror(log_path);
    return 2;
  }
  // Line-buffered: scenarios grep the log while the command runs (wait_for ... grep MARKER). Fully
  // buffered, a quiet guest's few lines sat in the 4 KiB buffer until exit, so a marker never
  // showed up in time (the migration benchmark's idle case, which prints little after boot).
  setvbuf(st.log, NULL, _IOLBF, 0);
  int fds[2];
  if (pipe(fds) != 0) {
    perror("pipe");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);  // a peer gone mid-stream is seen as a write error, not our death
  double start = now_ms();
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 2;
  }
  if (pid == 0) {
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    execvp(argv[optind], argv + optind);
    fprintf(stderr, "l1run: exec %s: %s\n", argv[optind], strerror(errno));
    _exit(127);
  }
  close(fds[1]);

  struct liner con = {.len = 0}, sock = {.len = 0};
  int sock_fd = -1, timed_out = 0, killed = 0;
  int send_fd = -1, recv_fd = -1;
  static char out[65536];
  size_t out_off = 0, out_len = 0;
  char buf[65536];
  if (recv_path && (recv_fd = open(recv_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
    perror(recv_path);
    return 2;
  }
  for (;;) {
    double left = timeout_s * 1e3 - (now_ms() - start);
    if (left <= 0) {
      timed_out = 1;
      break;
    }
    if (send_fd >= 0 && out_off == out_len) {  // refill the outgoing buffer from SEND_FILE
      ssize_t n = read(send_fd, out, sizeof out);
      if (n <= 0) {
        close(send_fd);
        send_fd = -1;
      } else {
        out_off = 0;
        out_len = (size_t)n;
      }
    }
    if (stall_until > 0 && now_ms() - start >= stall_until) {
      stall_until = 0;
      fprintf(st.log, "%.1f SOCK-RESUME rss_kb=%ld\n", now_ms() - start, rss_kb(pid));
    }
    short sock_events = (stall_until > 0 ? 0 : POLLIN) | (out_off < out_len ? POLLOUT : 0);
    struct pollfd p[2] = {{.fd = fds[0], .events = POLLIN}, {.fd = sock_fd, .events = sock_events}};
    int wait_ms = st.triggered == 1 ? 0 : left > 1000 ? 1000 : (int)left + 1;  // a pending trigger: no wait
    int r = poll(p, sock_fd >= 0 ? 2 : 1, wait_ms);
    if (r < 0) continue;  // (a quiet second falls through: a pending trigger still connects)
    if (sock_fd >= 0 && (p[1].revents & POLLOUT) && out_off < out_len) {
      ssize_t w = write(sock_fd, out + out_off, out_len - out_off);
      if (w > 0) out_off += (size_t)w;
    }
    if (sock_fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(sock_fd, buf, sizeof buf);
      st.t = now_ms() - start;
      st.prefix = "SOCK ";
      if (n > 0 && recv_fd >= 0) {
        if (write_all(recv_fd, buf, (size_t)n)) perror(recv_path);
      } else if (n > 0) {
        feed(&sock, buf, n, &st);
      }
      st.prefix = "";
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        close(sock_fd);
        sock_fd = -1;
      }
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(fds[0], buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // the command closed its output: it is exiting
      st.t = now_ms() - start;
      feed(&con, buf, n, &st);
    }
    if (st.triggered == 1) {
      st.triggered = 2;
      sock_fd = connect_unix(sock_path);
      st.t = now_ms() - start;
      fprintf(st.log, "%.1f SOCK-CONNECT %s %s\n", st.t, sock_path, sock_fd >= 0 ? "ok" : strerror(errno));
      if (sock_fd >= 0 && stall_s > 0) {
        stall_until = st.t + stall_s * 1e3;
        fprintf(st.log, "%.1f SOCK-STALL rss_kb=%ld\n", st.t, rss_kb(pid));
      }
      if (sock_fd >= 0 && send_path) {
        send_fd = open(send_path, O_RDONLY | O_CLOEXEC);
        if (send_fd < 0) fprintf(st.log, "%.1f SOCK-SEND %s %s\n", st.t, send_path, strerror(errno));
        fcntl(sock_fd, F_SETFL, fcntl(sock_fd, F_GETFL) | O_NONBLOCK);
      } else if (sock_fd >= 0 && (write_all(sock_fd, sock_text, strlen(sock_text)) || write_all(sock_fd, "\n", 1))) {
        close(sock_fd);
        sock_fd = -1;
      }
    }
    if ((kill_after && st.markers >= kill_after) || st.aborted) {
      killed = 1;
      break;
    }
  }
  if (con.len) {
    st.t = now_ms() - start;
    feed(&con, "\n", 1, &st);
  }
  if (timed_out || killed) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  double end = now_ms() - start;
  if (sock_fd >= 0) close(sock_fd);
  if (send_fd >= 0) close(send_fd);
  if (recv_fd >= 0) close(recv_fd);
  fclose(st.log);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  printf("RUN_EXIT=%d RUN_MS=%.1f RUN_MARKER_MS=%.1f RUN_MARKERS=%ld RUN_TIMEOUT=%d RUN_KILLED=%d "
         "RUN_ABORTED=%d\n",
         code, end, st.marker_ms, st.markers, timed_out, killed, st.aborted);
  return 0;
}
