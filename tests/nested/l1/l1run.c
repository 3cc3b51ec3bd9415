// l1run: runs an L2 VMM inside L1 and timestamps its console.
//
//   l1run [-t SECONDS] [-m MARKER] [-k COUNT] [-x ABORT] [-o LOG] -- COMMAND ARGS...
//
// The command's stdout and stderr go to LOG (default /dev/null), one line each, prefixed with the
// milliseconds since launch (CLOCK_MONOTONIC) at which the line was complete; '\r' is dropped.
// -m MARKER counts lines containing MARKER; -k COUNT kills the command (SIGKILL) once COUNT
// marker lines were seen; -x kills it at the first line containing ABORT (e.g. QEMU's
// "emulation failure", after which it would sit paused); -t kills it after SECONDS.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  double timeout_s = 120;
  const char *marker = NULL, *abort_on = NULL, *log_path = "/dev/null";
  long kill_after = 0;
  int opt;
  while ((opt = getopt(argc, argv, "+t:m:k:x:o:")) != -1) {
    switch (opt) {
      case 't': timeout_s = atof(optarg); break;
      case 'm': marker = optarg; break;
      case 'k': kill_after = atol(optarg); break;
      case 'x': abort_on = optarg; break;
      case 'o': log_path = optarg; break;
      default:
        fprintf(stderr, "usage: l1run [-t S] [-m MARKER] [-k N] [-x ABORT] [-o LOG] -- CMD...\n");
        return 2;
    }
  }
  if (optind >= argc) {
    fprintf(stderr, "l1run: no command\n");
    return 2;
  }
  FILE *log = fopen(log_path, "w");
  if (!log) {
    perror(log_path);
    return 2;
  }
  int fds[2];
  if (pipe(fds) != 0) {
    perror("pipe");
    return 2;
  }
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

  char line[8192];
  size_t len = 0;
  long markers = 0;
  double marker_ms = -1;
  int timed_out = 0, killed = 0, aborted = 0;
  char buf[4096];
  for (;;) {
    double left = timeout_s * 1e3 - (now_ms() - start);
    if (left <= 0) {
      timed_out = 1;
      break;
    }
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    int r = poll(&p, 1, left > 1000 ? 1000 : (int)left + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    double t = now_ms() - start;
    for (ssize_t i = 0; i < n; i++) {
      char c = buf[i];
      if (c == '\r') continue;
      if (c != '\n' && len < sizeof line - 1) {
        line[len++] = c;
        continue;
      }
      if (c != '\n') continue;  // overlong line: truncated
      line[len] = 0;
      fprintf(log, "%.1f %s\n", t, line);
      if (marker && strstr(line, marker)) {
        if (markers++ == 0) marker_ms = t;
      }
      if (abort_on && strstr(line, abort_on)) aborted = 1;
      len = 0;
    }
    if ((kill_after && markers >= kill_after) || aborted) {
      killed = 1;
      break;
    }
  }
  if (len) {
    line[len] = 0;
    fprintf(log, "%.1f %s\n", now_ms() - start, line);
    if (marker && strstr(line, marker) && markers++ == 0) marker_ms = now_ms() - start;
  }
  if (timed_out || killed) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  double end = now_ms() - start;
  fclose(log);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  printf("RUN_EXIT=%d RUN_MS=%.1f RUN_MARKER_MS=%.1f RUN_MARKERS=%ld RUN_TIMEOUT=%d RUN_KILLED=%d RUN_ABORTED=%d\n",
         code, end, marker_ms, markers, timed_out, killed, aborted);
  return 0;
}
