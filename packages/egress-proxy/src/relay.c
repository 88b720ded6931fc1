/*
 * bottlekit egress-proxy: the native relay for plain CONNECT tunnels.
 *
 * The proxy hands a tunnel over once it has carried enough bytes (see src/native-relay.ts):
 *   fd 0  a pipe with the bytes the proxy had already read from the agent (upstream gets them first)
 *   fd 1  a pipe: at exit, one line "<agent->upstream bytes> <upstream->agent bytes>\n"
 *   fd 3  the agent's socket     fd 4  the upstream socket
 * Both sockets are non-blocking (they share their open file description with the proxy). Each
 * direction moves data with splice(2) through its own pipe, so the bytes never enter user space.
 * EOF on one side becomes shutdown(SHUT_WR) on the other; the relay exits once both directions
 * are done or either socket fails. SIGTERM (the proxy's cutoff) shuts both sockets down at once.
 * The relay exits if the proxy dies (PR_SET_PDEATHSIG). No allocation after start, no threads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define AGENT 3
#define UPSTREAM 4
#define PIPE_BYTES (1 << 20)
#define CHUNK (1 << 20)

static volatile sig_atomic_t stopping = 0;

static void on_term(int sig) {
  (void)sig;
  stopping = 1;
  shutdown(AGENT, SHUT_RDWR);
  shutdown(UPSTREAM, SHUT_RDWR);
}

struct dir {
  int from, to;
  int pipe_r, pipe_w;
  size_t queued;        /* bytes in the pipe */
  unsigned long long moved; /* bytes written to `to` */
  int eof;              /* `from` returned EOF */
  int done;             /* EOF seen and the pipe drained: `to` was shut down for writing */
};

/* Writes all of buf to a non-blocking fd. 0 ok, -1 failure. */
static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n > 0) {
      buf += n;
      len -= (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) {
      if (stopping) return -1;
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      struct pollfd p = {fd, POLLOUT, 0};
      if (poll(&p, 1, -1) < 0 && errno != EINTR) return -1;
      if (stopping) return -1;
      continue;
    }
    return -1;
  }
  return 0;
}

/* One step of a direction. Returns -1 on a socket failure, 0 otherwise. */
static int step(struct dir *d, short from_ev, short to_ev) {
  if (d->queued > 0 && (to_ev & (POLLOUT | POLLERR | POLLHUP))) {
    ssize_t n = splice(d->pipe_r, NULL, d->to, NULL, d->queued, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      d->queued -= (size_t)n;
      d->moved += (unsigned long long)n;
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return -1;
    }
  }
  if (!d->eof && d->queued < PIPE_BYTES && (from_ev & (POLLIN | POLLHUP | POLLERR))) {
    ssize_t n = splice(d->from, NULL, d->pipe_w, NULL, CHUNK, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      d->queued += (size_t)n;
    } else if (n == 0) {
      d->eof = 1;
    } else if (errno != EAGAIN && errno != EINTR) {
      return -1;
    }
  }
  if (d->eof && d->queued == 0 && !d->done) {
    d->done = 1;
    shutdown(d->to, SHUT_WR);
  }
  return 0;
}

int main(void) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() == 1) return 3; /* the proxy is already gone */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: poll returns EINTR */
  signal(SIGPIPE, SIG_IGN);

  struct dir up = {AGENT, UPSTREAM, -1, -1, 0, 0, 0, 0};
  struct dir down = {UPSTREAM, AGENT, -1, -1, 0, 0, 0, 0};
  int p[2];
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return 2;
  up.pipe_r = p[0];
  up.pipe_w = p[1];
  fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES);
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return 2;
  down.pipe_r = p[0];
  down.pipe_w = p[1];
  fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES);

  int failed = 0;
  /* the agent's bytes the proxy had already read go upstream first */
  static char prefix[65536];
  for (;;) {
    ssize_t n = read(0, prefix, sizeof prefix);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR && !stopping) continue;
      failed = 1;
      break;
    }
    if (write_all(UPSTREAM, prefix, (size_t)n) < 0) {
      failed = 1;
      break;
    }
    up.moved += (unsigned long long)n;
  }

  while (!failed && !stopping && !(up.done && down.done)) {
    struct pollfd fds[2] = {{AGENT, 0, 0}, {UPSTREAM, 0, 0}};
    if (!up.eof && up.queued < PIPE_BYTES) fds[0].events |= POLLIN;
    if (!down.eof && down.queued < PIPE_BYTES) fds[1].events |= POLLIN;
    if (up.queued > 0) fds[1].events |= POLLOUT;
    if (down.queued > 0) fds[0].events |= POLLOUT;
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      failed = 1;
      break;
    }
    if ((fds[0].revents & POLLNVAL) || (fds[1].revents & POLLNVAL)) {
      failed = 1;
      break;
    }
    if (step(&up, fds[0].revents, fds[1].revents) < 0) failed = 1;
    if (!failed && step(&down, fds[1].revents, fds[0].revents) < 0) failed = 1;
    /* hung up while the other direction still writes into it: the peer is gone (closed or reset) */
    if (!failed && (((fds[0].revents & POLLHUP) && !down.done) ||
                    ((fds[1].revents & POLLHUP) && !up.done)))
      failed = 1;
    /* an error with nothing to read or write (reset by the peer): stop */
    if (!failed && ((fds[0].revents & POLLERR) || (fds[1].revents & POLLERR))) {
      int err = 0;
      socklen_t len = sizeof err;
      if ((getsockopt(AGENT, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) ||
          (getsockopt(UPSTREAM, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0))
        failed = 1;
    }
  }
  if (failed || stopping) {
    shutdown(AGENT, SHUT_RDWR);
    shutdown(UPSTREAM, SHUT_RDWR);
  }
  char line[64];
  int len = snprintf(line, sizeof line, "%llu %llu\n", up.moved, down.moved);
  if (len > 0) (void)!write(1, line, (size_t)len);
  return failed ? 1 : 0;
}
