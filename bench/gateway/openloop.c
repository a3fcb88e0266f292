/*
 * openloop: a single-threaded, open-loop (constant-rate) HTTP/1.1 load generator for Linux.
 *
 *   openloop -c CONNS -r RATE -d SECONDS [-w WARMUP_SECONDS] [-p PATH] [-t DRAIN_SECONDS] HOST PORT
 *
 * Request i is due at start + i / RATE on CLOCK_MONOTONIC. A due request goes out on an idle
 * keep-alive connection (one request in flight per connection, no pipelining); when none is
 * idle it waits in a FIFO, and its latency still counts from its scheduled time (corrected for
 * coordinated omission, as wrk2 does). Responses are framed by status line, Content-Length,
 * chunked transfer-encoding, or the server closing the connection. A connection the server
 * closes is reopened. Requests scheduled during the warm-up are sent but left out of the stats.
 *
 * Prints one JSON line on stdout, times in microseconds:
 *   {"requested":R,"seconds":D,"sent":n,"completed":n,"non2xx":n,"errors":n,"timeouts":n,
 *    "achievedRate":x,"p50":us,"p90":us,"p99":us,"p999":us,"max":us,"p50Service":us,"p99Service":us,
 *    "p50Late":us,"p99Late":us}
 * p* count from the scheduled time, *Service from the moment the request was written. *Late is how
 * long after its due time the generator itself noticed a request was due (its own wake-up delay, the
 * machine's scheduling latency): when p99Late is close to p99, the run measured the machine's CPU
 * contention, not the server. achievedRate is completed / max(SECONDS, last answer - first due).
 * "timeouts" are measured requests neither completed nor failed DRAIN_SECONDS (default 5) after
 * the last one was due.
 *
 * Build: gcc -O2 -Wall -Wextra -o openloop openloop.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* ---------- clock ---------- */

/* Smallest integer >= x, for x >= 0 (no libm needed). */
static uint64_t ceil_u64(double x) {
  if (!(x > 0)) return 0;
  uint64_t u = (uint64_t)x;
  return (double)u < x ? u + 1 : u;
}

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------- log-linear histogram (HDR-like), values in ns, ~0.1 % precision ---------- */

#define SUB_BITS 10
#define SUB (1u << SUB_BITS)       /* 1024 sub-buckets per power of two */
#define LINEAR (2u * SUB)          /* values below 2048 ns are exact */
#define EXPONENTS 40               /* up to 2^50 ns */
#define NBUCKETS (LINEAR + EXPONENTS * SUB)

typedef struct {
  uint64_t *counts;
  uint64_t total;
  uint64_t max;
} hist_t;

static int bit_len(uint64_t v) { return 64 - __builtin_clzll(v); }

static size_t hist_index(uint64_t v) {
  if (v < LINEAR) return (size_t)v;
  int shift = bit_len(v) - (SUB_BITS + 1); /* v >> shift in [SUB, 2*SUB) */
  size_t i = LINEAR + (size_t)(shift - 1) * SUB + (size_t)((v >> shift) - SUB);
  return i < NBUCKETS ? i : NBUCKETS - 1;
}

/* Midpoint of bucket i, ns. */
static double hist_value(size_t i) {
  if (i < LINEAR) return (double)i;
  size_t k = i - LINEAR;
  int shift = (int)(k / SUB) + 1;
  uint64_t lo = (uint64_t)(SUB + k % SUB) << shift;
  return (double)lo + (double)(1ull << shift) / 2.0 - 0.5;
}

static void hist_init(hist_t *h) {
  h->counts = calloc(NBUCKETS, sizeof(uint64_t));
  if (h->counts == NULL) {
    perror("calloc");
    exit(1);
  }
  h->total = 0;
  h->max = 0;
}

static inline void hist_add(hist_t *h, uint64_t v) {
  h->counts[hist_index(v)]++;
  h->total++;
  if (v > h->max) h->max = v;
}

/* Value at quantile q (0..1), µs. */
static double hist_quantile_us(const hist_t *h, double q) {
  if (h->total == 0) return 0;
  uint64_t rank = ceil_u64(q * (double)h->total);
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < NBUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= rank) {
      double v = hist_value(i);
      if (v > (double)h->max) v = (double)h->max;
      return v / 1000.0;
    }
  }
  return (double)h->max / 1000.0;
}

/* ---------- connections ---------- */

enum { C_DOWN, C_CONNECTING, C_IDLE, C_BUSY, C_DONE };
enum { P_HEAD, P_BODY_LEN, P_BODY_EOF, P_CHUNK_SIZE, P_CHUNK_DATA, P_CHUNK_CRLF, P_TRAILER };

#define RBUF 65536

typedef struct {
  int fd;
  int state;
  int pstate;
  int status;
  int close_after;   /* response said Connection: close, or HTTP/1.0 without keep-alive */
  int got_bytes;     /* any response byte received for the request in flight */
  int measured;
  size_t woff;       /* bytes of the request written so far */
  uint64_t remaining;
  uint64_t sched;
  uint64_t sent;
  uint64_t retry_at;
  size_t rlen;
  char rbuf[RBUF];
} conn_t;

static int epfd;
static conn_t *conns;
static int nconns;
static int *idle;
static int nidle;
static int ndown;
static int nbusy;
static struct sockaddr_storage addr;
static socklen_t addrlen;
static char *req;
static size_t reqlen;

static uint64_t measure_from; /* requests scheduled at or after this are measured */
static hist_t hsched, hserv, hlate;
static uint64_t m_sent, m_completed, m_non2xx, m_errors, m_failed;
static uint64_t last_done;

static void conn_down(conn_t *c, uint64_t now);

static void ep_set(conn_t *c, uint32_t ev, int op) {
  struct epoll_event e = {.events = ev, .data.u64 = (uint64_t)(c - conns)};
  if (epoll_ctl(epfd, op, c->fd, &e) < 0) {
    perror("epoll_ctl");
    exit(1);
  }
}

static void conn_open(conn_t *c, uint64_t now) {
  c->fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    perror("socket");
    exit(1);
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->rlen = 0;
  if (connect(c->fd, (struct sockaddr *)&addr, addrlen) == 0) {
    c->state = C_IDLE;
    ep_set(c, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_ADD);
    idle[nidle++] = (int)(c - conns);
  } else if (errno == EINPROGRESS) {
    c->state = C_CONNECTING;
    ep_set(c, EPOLLOUT, EPOLL_CTL_ADD);
  } else {
    m_errors++;
    close(c->fd);
    c->fd = -1;
    c->state = C_DOWN;
    c->retry_at = now + 10000000ull;
    ndown++;
  }
}

/* Close a connection; a request in flight on it fails. It is reopened after a pause when the
   server refused it, at once otherwise. */
static void conn_close(conn_t *c, int failed, uint64_t now) {
  if (c->state == C_BUSY) nbusy--;
  if (c->state == C_BUSY && failed) {
    if (c->measured) {
      m_errors++;
      m_failed++;
    }
  }
  if (c->state == C_IDLE) {
    for (int i = 0; i < nidle; i++)
      if (idle[i] == (int)(c - conns)) {
        idle[i] = idle[--nidle];
        break;
      }
  }
  close(c->fd); /* also removes it from the epoll set */
  c->fd = -1;
  c->state = C_DOWN;
  c->retry_at = now;
  ndown++;
}

static void conn_down(conn_t *c, uint64_t now) {
  conn_close(c, 1, now);
  c->retry_at = now + 10000000ull;
}

static int ci_prefix(const char *s, const char *end, const char *p) {
  size_t n = strlen(p);
  return (size_t)(end - s) >= n && strncasecmp(s, p, n) == 0;
}

static int has_token(const char *s, const char *end, const char *tok) {
  size_t n = strlen(tok);
  for (; s + n <= end; s++)
    if (strncasecmp(s, tok, n) == 0) return 1;
  return 0;
}

/* Parses the head in c->rbuf[0..hlen). Returns 0 or -1 on a malformed head. */
static int parse_head(conn_t *c, size_t hlen) {
  const char *p = c->rbuf, *end = c->rbuf + hlen;
  if (hlen < 12 || strncmp(p, "HTTP/1.", 7) != 0) return -1;
  int minor = p[7] - '0';
  if (p[8] != ' ' || p[9] < '0' || p[9] > '9') return -1;
  c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
  int chunked = 0, has_len = 0, ka = minor >= 1, close_hdr = 0;
  uint64_t len = 0;
  const char *line = memchr(p, '\n', (size_t)(end - p));
  while (line != NULL && line + 1 < end) {
    line++;
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (eol == NULL) eol = end;
    if (ci_prefix(line, eol, "content-length:")) {
      const char *v = line + 15;
      while (v < eol && (*v == ' ' || *v == '\t')) v++;
      len = 0;
      has_len = 0;
      while (v < eol && *v >= '0' && *v <= '9') {
        len = len * 10 + (uint64_t)(*v++ - '0');
        has_len = 1;
      }
    } else if (ci_prefix(line, eol, "transfer-encoding:")) {
      if (has_token(line + 18, eol, "chunked")) chunked = 1;
    } else if (ci_prefix(line, eol, "connection:")) {
      if (has_token(line + 11, eol, "close")) close_hdr = 1;
      if (has_token(line + 11, eol, "keep-alive")) ka = 1;
    }
    line = eol;
  }
  c->close_after = close_hdr || !ka;
  if (c->status == 204 || c->status == 304 || (c->status >= 100 && c->status < 200)) {
    c->pstate = P_BODY_LEN;
    c->remaining = 0;
  } else if (chunked) {
    c->pstate = P_CHUNK_SIZE;
  } else if (has_len) {
    c->pstate = P_BODY_LEN;
    c->remaining = len;
  } else {
    c->pstate = P_BODY_EOF;
    c->close_after = 1;
  }
  return 0;
}

static void dispatch_queued(uint64_t now);

/* The response on c is complete. */
static void response_done(conn_t *c) {
  uint64_t t = now_ns();
  if (c->measured) {
    m_completed++;
    if (c->status < 200 || c->status > 299) m_non2xx++;
    hist_add(&hsched, t - c->sched);
    hist_add(&hserv, t - c->sent);
    last_done = t;
  }
  nbusy--;
  c->state = C_DONE;
  if (c->close_after || c->rlen > 0) {
    if (c->rlen > 0 && c->measured) m_errors++; /* bytes nobody asked for */
    conn_close(c, 0, t);
    return;
  }
  c->state = C_IDLE;
  idle[nidle++] = (int)(c - conns);
  dispatch_queued(t);
}

/* Consumes what is buffered. Returns 1 when the response completed, 0 when more bytes are
   needed, -1 on a protocol error. */
static int parse(conn_t *c) {
  size_t pos = 0;
  int done = 0;
  while (!done) {
    char *b = c->rbuf + pos;
    size_t n = c->rlen - pos;
    switch (c->pstate) {
      case P_HEAD: {
        char *e = memmem(b, n, "\r\n\r\n", 4);
        if (e == NULL) {
          if (c->rlen >= RBUF) return -1;
          goto need;
        }
        size_t hlen = (size_t)(e - b) + 4;
        if (pos != 0) return -1;
        if (parse_head(c, hlen) < 0) return -1;
        pos += hlen;
        if (c->status >= 100 && c->status < 200 && c->status != 101) {
          c->pstate = P_HEAD; /* interim response: the real one follows */
          memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
          c->rlen -= pos;
          pos = 0;
        } else if (c->pstate == P_BODY_LEN && c->remaining == 0) {
          done = 1;
        }
        break;
      }
      case P_BODY_LEN: {
        size_t take = n < c->remaining ? n : (size_t)c->remaining;
        pos += take;
        c->remaining -= take;
        if (c->remaining == 0) done = 1;
        else goto need;
        break;
      }
      case P_BODY_EOF:
        pos = c->rlen;
        goto need;
      case P_CHUNK_SIZE: {
        char *e = memmem(b, n, "\r\n", 2);
        if (e == NULL) {
          if (n >= 1024) return -1;
          goto need;
        }
        uint64_t sz = 0;
        int digits = 0;
        for (char *q = b; q < e; q++) {
          int d;
          if (*q >= '0' && *q <= '9') d = *q - '0';
          else if (*q >= 'a' && *q <= 'f') d = *q - 'a' + 10;
          else if (*q >= 'A' && *q <= 'F') d = *q - 'A' + 10;
          else break; /* ';' extensions or whitespace */
          sz = sz * 16 + (uint64_t)d;
          digits++;
        }
        if (digits == 0) return -1;
        pos += (size_t)(e - b) + 2;
        if (sz == 0) {
          c->pstate = P_TRAILER;
        } else {
          c->pstate = P_CHUNK_DATA;
          c->remaining = sz;
        }
        break;
      }
      case P_CHUNK_DATA: {
        size_t take = n < c->remaining ? n : (size_t)c->remaining;
        pos += take;
        c->remaining -= take;
        if (c->remaining > 0) goto need;
        c->pstate = P_CHUNK_CRLF;
        break;
      }
      case P_CHUNK_CRLF:
        if (n < 2) goto need;
        if (b[0] != '\r' || b[1] != '\n') return -1;
        pos += 2;
        c->pstate = P_CHUNK_SIZE;
        break;
      case P_TRAILER: {
        char *e = memmem(b, n, "\r\n", 2);
        if (e == NULL) {
          if (n >= 4096) return -1;
          goto need;
        }
        pos += (size_t)(e - b) + 2;
        if (e == b) done = 1; /* empty line ends the trailers */
        break;
      }
    }
  }
  memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
  c->rlen -= pos;
  return 1;
need:
  if (pos > 0) {
    memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
    c->rlen -= pos;
  }
  return 0;
}

static void on_readable(conn_t *c, uint64_t now) {
  for (;;) {
    if (c->rlen >= RBUF) {
      conn_down(c, now);
      return;
    }
    ssize_t r = recv(c->fd, c->rbuf + c->rlen, RBUF - c->rlen, 0);
    if (r > 0) {
      c->rlen += (size_t)r;
      if (c->state != C_BUSY) {
        if (c->state == C_IDLE && c->measured) m_errors++; /* unsolicited bytes */
        conn_close(c, 0, now);
        return;
      }
      c->got_bytes = 1;
      int p = parse(c);
      if (p < 0) {
        conn_down(c, now);
        return;
      }
      if (p > 0) {
        response_done(c);
        return;
      }
      if ((size_t)r < RBUF - c->rlen) return; /* drained the socket for now */
    } else if (r == 0) {
      if (c->state == C_BUSY && c->pstate == P_BODY_EOF) {
        c->close_after = 1;
        c->rlen = 0;
        response_done(c);
      } else {
        /* A keep-alive connection the server closed: reopen it at once when nothing was lost. */
        conn_close(c, c->state == C_BUSY, now);
      }
      return;
    } else {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      conn_down(c, now);
      return;
    }
  }
}

static void try_write(conn_t *c, uint64_t now) {
  while (c->woff < reqlen) {
    ssize_t w = send(c->fd, req + c->woff, reqlen - c->woff, MSG_NOSIGNAL);
    if (w > 0) {
      c->woff += (size_t)w;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      ep_set(c, EPOLLIN | EPOLLOUT | EPOLLRDHUP, EPOLL_CTL_MOD);
      return;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else {
      conn_down(c, now);
      return;
    }
  }
}

static void on_writable(conn_t *c, uint64_t now) {
  if (c->state == C_CONNECTING) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err != 0) {
      m_errors++;
      close(c->fd);
      c->fd = -1;
      c->state = C_DOWN;
      c->retry_at = now + 10000000ull;
      ndown++;
      return;
    }
    c->state = C_IDLE;
    ep_set(c, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
    idle[nidle++] = (int)(c - conns);
    dispatch_queued(now);
    return;
  }
  if (c->state == C_BUSY && c->woff < reqlen) {
    try_write(c, now);
    if (c->state == C_BUSY && c->woff == reqlen)
      ep_set(c, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
  }
}

/* ---------- schedule ---------- */

static uint64_t start_ns;
static double interval_ns;
static uint64_t total;      /* requests scheduled over warm-up + duration */
static uint64_t next_due;   /* index of the next request not yet due */
static uint64_t next_send;  /* index of the oldest due request not yet sent (FIFO head) */

static inline uint64_t due_at(uint64_t i) { return start_ns + (uint64_t)((double)i * interval_ns); }

static void send_one(uint64_t i, uint64_t now) {
  int ci = idle[--nidle];
  conn_t *c = &conns[ci];
  c->state = C_BUSY;
  nbusy++;
  c->pstate = P_HEAD;
  c->sched = due_at(i);
  c->sent = now;
  c->woff = 0;
  c->got_bytes = 0;
  c->close_after = 0;
  c->measured = c->sched >= measure_from;
  if (c->measured) m_sent++;
  try_write(c, now);
}

static void dispatch_queued(uint64_t now) {
  while (next_send < next_due && nidle > 0) {
    send_one(next_send++, now);
    now = now_ns();
  }
}

/* ---------- waiting ---------- */

static int use_pwait2 = 1;
static int tfd = -1;
#define TIMER_TAG UINT64_MAX

/* The fallback timer fired: consume its count (the wake-up itself was the point). */
static void drain_timer(void) {
  uint64_t x;
  if (read(tfd, &x, sizeof x) < 0) { /* nothing to do */ }
}

static int wait_until(struct epoll_event *ev, int max, uint64_t deadline, uint64_t now) {
  if (use_pwait2) {
#ifdef __NR_epoll_pwait2
    struct timespec ts, *tp = NULL;
    if (deadline != UINT64_MAX) {
      uint64_t d = deadline > now ? deadline - now : 0;
      ts.tv_sec = (time_t)(d / 1000000000ull);
      ts.tv_nsec = (long)(d % 1000000000ull);
      tp = &ts;
    }
    long r = syscall(__NR_epoll_pwait2, epfd, ev, max, tp, NULL, 0);
    if (r >= 0 || errno != ENOSYS) return (int)r;
#endif
    use_pwait2 = 0;
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0) {
      perror("timerfd_create");
      exit(1);
    }
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = TIMER_TAG};
    epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &e);
  }
  struct itimerspec its = {0};
  if (deadline != UINT64_MAX) {
    uint64_t d = deadline > 0 ? deadline : 1;
    its.it_value.tv_sec = (time_t)(d / 1000000000ull);
    its.it_value.tv_nsec = (long)(d % 1000000000ull);
  }
  timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
  return epoll_wait(epfd, ev, max, -1);
}

/* Handles one batch of epoll events: the timer, connects finishing (or failing), writable and
 * readable connections. Before the clock starts no connection is busy, so this only finishes
 * connects and notices a server closing an idle connection (it is reopened). */
static void dispatch(struct epoll_event *ev, int n, uint64_t now) {
  for (int i = 0; i < n; i++) {
    if (ev[i].data.u64 == TIMER_TAG) {
      drain_timer();
      continue;
    }
    conn_t *c = &conns[ev[i].data.u64];
    if (c->fd < 0) continue; /* closed earlier in this batch */
    uint32_t e = ev[i].events;
    if (e & EPOLLOUT) on_writable(c, now);
    if (c->fd >= 0 && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && c->state != C_CONNECTING)
      on_readable(c, now);
    else if (c->fd >= 0 && (e & (EPOLLHUP | EPOLLERR)) && c->state == C_CONNECTING)
      on_writable(c, now);
  }
}

/* ---------- main ---------- */

static void usage(void) {
  fprintf(stderr,
          "usage: openloop -c CONNS -r RATE -d SECONDS [-w WARMUP_SECONDS] [-p PATH] [-t DRAIN_SECONDS] "
          "HOST PORT\n");
  exit(2);
}

int main(int argc, char **argv) {
  int c_opt;
  long conns_n = 0;
  double rate = 0, seconds = 0, warmup = 0, drain = 5;
  const char *path = "/";
  while ((c_opt = getopt(argc, argv, "c:r:d:w:p:t:h")) != -1) {
    switch (c_opt) {
      case 'c': conns_n = strtol(optarg, NULL, 10); break;
      case 'r': rate = strtod(optarg, NULL); break;
      case 'd': seconds = strtod(optarg, NULL); break;
      case 'w': warmup = strtod(optarg, NULL); break;
      case 'p': path = optarg; break;
      case 't': drain = strtod(optarg, NULL); break;
      default: usage();
    }
  }
  if (argc - optind != 2 || conns_n < 1 || conns_n > 100000 || !(rate > 0) || !(seconds > 0) ||
      warmup < 0 || drain < 0 || path[0] != '/')
    usage();
  const char *host = argv[optind], *port = argv[optind + 1];

  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
  int gai = getaddrinfo(host, port, &hints, &ai);
  if (gai != 0) {
    fprintf(stderr, "openloop: %s:%s: %s\n", host, port, gai_strerror(gai));
    return 1;
  }
  memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
  addrlen = ai->ai_addrlen;
  freeaddrinfo(ai);

  int hn = snprintf(NULL, 0, "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: openloop\r\n\r\n", path, host, port);
  req = malloc((size_t)hn + 1);
  snprintf(req, (size_t)hn + 1, "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: openloop\r\n\r\n", path, host, port);
  reqlen = (size_t)hn;

  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* wake within 1 µs of a send time, not the default 50 */

  nconns = (int)conns_n;
  conns = calloc((size_t)nconns, sizeof(conn_t));
  idle = calloc((size_t)nconns, sizeof(int));
  if (conns == NULL || idle == NULL) {
    perror("calloc");
    return 1;
  }
  hist_init(&hsched);
  hist_init(&hserv);
  hist_init(&hlate);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    perror("epoll_create1");
    return 1;
  }

  struct epoll_event ev[512];
  uint64_t now = now_ns();
  for (int i = 0; i < nconns; i++) conn_open(&conns[i], now);

  /* Wait (up to 5 s) for every connection before the clock starts. */
  uint64_t connect_deadline = now + 5000000000ull;
  while (nidle < nconns && now < connect_deadline) {
    if (ndown > 0) break;
    int n = wait_until(ev, 512, connect_deadline, now);
    now = now_ns();
    dispatch(ev, n, now);
  }
  if (nidle == 0) {
    fprintf(stderr, "openloop: cannot connect to %s:%s\n", host, port);
    return 1;
  }

  interval_ns = 1e9 / rate;
  total = (uint64_t)((warmup + seconds) * rate + 1e-9);
  start_ns = now_ns() + 1000000ull;
  measure_from = due_at(ceil_u64(warmup * rate - 1e-9));
  uint64_t end_sched = start_ns + (uint64_t)((warmup + seconds) * 1e9);
  uint64_t hard_end = end_sched + (uint64_t)(drain * 1e9);
  m_errors = 0; /* connect failures before the start are not the measured period's */

  for (;;) {
    now = now_ns();
    /* Reopen closed connections whose pause is over. */
    if (ndown > 0) {
      for (int i = 0; i < nconns; i++) {
        conn_t *c = &conns[i];
        if (c->state == C_DOWN && c->retry_at <= now) {
          ndown--;
          conn_open(c, now);
        }
      }
    }
    /* Everything due by now joins the FIFO; send as many as there are idle connections. */
    while (next_due < total && due_at(next_due) <= now) {
      uint64_t d = due_at(next_due);
      if (d >= measure_from) hist_add(&hlate, now - d);
      next_due++;
    }
    dispatch_queued(now);

    if (next_due >= total && next_send >= next_due && nbusy == 0) break;
    if (now >= hard_end) break;

    uint64_t deadline = hard_end;
    if (next_due < total && nidle > 0 && next_send >= next_due) {
      uint64_t d = due_at(next_due);
      if (d < deadline) deadline = d;
    }
    if (ndown > 0) {
      for (int i = 0; i < nconns; i++)
        if (conns[i].state == C_DOWN && conns[i].retry_at < deadline) deadline = conns[i].retry_at;
    }
    int n = wait_until(ev, 512, deadline, now_ns()); /* a fresh now: never wake before the due time */
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    dispatch(ev, n, now_ns());
  }

  /* Measured requests neither completed nor failed: still queued or in flight at the end. */
  uint64_t measured_total = 0;
  for (uint64_t i = 0; i < total; i++)
    if (due_at(i) >= measure_from) measured_total++;
  uint64_t timeouts = measured_total - m_completed - m_failed;

  double span = seconds;
  if (last_done > measure_from) {
    double s = (double)(last_done - measure_from) / 1e9;
    if (s > span) span = s;
  }
  printf("{\"requested\":%.6g,\"seconds\":%.6g,\"sent\":%llu,\"completed\":%llu,\"non2xx\":%llu,"
         "\"errors\":%llu,\"timeouts\":%llu,\"achievedRate\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
         "\"p999\":%.1f,\"max\":%.1f,\"p50Service\":%.1f,\"p99Service\":%.1f,\"p50Late\":%.1f,"
         "\"p99Late\":%.1f}\n",
         rate, seconds, (unsigned long long)m_sent, (unsigned long long)m_completed,
         (unsigned long long)m_non2xx, (unsigned long long)m_errors, (unsigned long long)timeouts,
         (double)m_completed / span, hist_quantile_us(&hsched, 0.5), hist_quantile_us(&hsched, 0.9),
         hist_quantile_us(&hsched, 0.99), hist_quantile_us(&hsched, 0.999), (double)hsched.max / 1000.0,
         hist_quantile_us(&hserv, 0.5), hist_quantile_us(&hserv, 0.99), hist_quantile_us(&hlate, 0.5),
         hist_quantile_us(&hlate, 0.99));
  return 0;
}
