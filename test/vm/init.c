/* PID 1 of the test VM that scripts/numa-vm.py boots (docs/testing.md,
 * "Tests on a NUMA machine").
 *
 * Mounts /proc, /sys and /dev, runs the command that numa-vm.py wrote
 * to /kt-vm/argv (NUL-separated) in the directory named by /kt-vm/cwd, with
 * the environment of /kt-vm/env (NUL-separated), its stdout and stderr sent
 * to files. Then writes one record to the second serial port (ttyS1, raw):
 *
 *   "KTVM1 <exit status> <stdout bytes> <stderr bytes>\n" stdout stderr
 *
 * and powers the machine off. The kernel's own console is ttyS0, so nothing
 * the kernel prints can interleave with the record. Exit status: the
 * command's, 128 + signal when a signal killed it, 127 when it could not be
 * started (the reason is then on stderr). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* Reads a whole file; *len gets its size. NULL when it cannot be read. */
static char *slurp(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap + 1);
  for (;;) {
    if (n == cap) {
      cap *= 2;
      buf = realloc(buf, cap + 1);
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = 0;
  *len = n;
  return buf;
}

/* Splits a NUL-separated list into a NULL-terminated vector. */
static char **split(char *buf, size_t len) {
  size_t count = 0;
  for (size_t i = 0; i < len; ++i)
    count += buf[i] == 0;
  char **v = calloc(count + 1, sizeof(char *));
  size_t k = 0, start = 0;
  for (size_t i = 0; i < len; ++i)
    if (buf[i] == 0) {
      v[k++] = buf + start;
      start = i + 1;
    }
  return v;
}

static void writeAll(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return;
    p += w;
    n -= (size_t)w;
  }
}

static void powerOff(void) {
  sync();
  reboot(RB_POWER_OFF);
  for (;;)
    pause();
}

int main(void) {
  mount("proc", "/proc", "proc", 0, NULL);
  mount("sysfs", "/sys", "sysfs", 0, NULL);
  mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
  /* No tmpfs on /tmp: the initramfs (itself writable) may hold the
   * command's files there, at their paths on the host. */

  int port = open("/dev/ttyS1", O_WRONLY | O_NOCTTY);
  if (port < 0) {
    fprintf(stderr, "kt-vm-init: cannot open /dev/ttyS1: %s\n",
            strerror(errno));
    powerOff();
  }
  struct termios tio;
  if (tcgetattr(port, &tio) == 0) {
    cfmakeraw(&tio);
    tcsetattr(port, TCSANOW, &tio);
  }

  size_t argvLen = 0, envLen = 0, cwdLen = 0;
  char *argvBuf = slurp("/kt-vm/argv", &argvLen);
  char *envBuf = slurp("/kt-vm/env", &envLen);
  char *cwd = slurp("/kt-vm/cwd", &cwdLen);
  int status = 127;
  pid_t pid = fork();
  if (pid == 0) {
    int out = open("/kt-vm/stdout", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open("/kt-vm/stderr", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(err, 2);
    if (!argvBuf || argvLen == 0) {
      fprintf(stderr, "kt-vm-init: /kt-vm/argv is missing or empty\n");
      _exit(127);
    }
    char **args = split(argvBuf, argvLen);
    char **env = envBuf ? split(envBuf, envLen) : calloc(1, sizeof(char *));
    if (cwd && cwdLen && chdir(cwd) != 0)
      fprintf(stderr, "kt-vm-init: cannot enter %s: %s\n", cwd,
              strerror(errno));
    execve(args[0], args, env);
    fprintf(stderr, "kt-vm-init: cannot run %s: %s\n", args[0],
            strerror(errno));
    _exit(127);
  }
  if (pid > 0) {
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
      ;
    status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  }
  size_t outLen = 0, errLen = 0;
  char *out = slurp("/kt-vm/stdout", &outLen);
  char *err = slurp("/kt-vm/stderr", &errLen);
  char head[96];
  int n = snprintf(head, sizeof head, "KTVM1 %d %zu %zu\n", status,
                   out ? outLen : 0, err ? errLen : 0);
  writeAll(port, head, (size_t)n);
  if (out)
    writeAll(port, out, outLen);
  if (err)
    writeAll(port, err, errLen);
  tcdrain(port);
  powerOff();
  return 0;
}
