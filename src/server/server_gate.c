/*
 * server_gate.c — the server's front door: accept, look at the first header block, hand over.
 *
 * libmicrohttpd 0.9.75 answers some broken requests itself, before any callback of ours runs,
 * with an HTML page (and its status line sent twice): a Content-Length that is not a number
 * ("abc", "-1"), one too large for 64 bits, a header block beyond its memory pool, a request line
 * longer than the pool.  It also takes two different Content-Length headers (the first wins: the
 * request-smuggling ambiguity RFC 9112 §6.3 says to refuse) and waits forever on a
 * Transfer-Encoding it does not know.  It offers no hook for any of these.  So the server owns
 * the listening socket: the gate accepts, peeks (MSG_PEEK: nothing is consumed) at the bytes of
 * the connection's first request until its header block is complete, and either answers with
 * the server's JSON error shape ({"error": {message, type, param, code}}, Connection: close) or
 * hands the untouched socket to the daemon with MHD_add_connection.
 *
 * Decisions:
 * - Only the first request of a connection is looked at (later keep-alive requests go straight
 *   to libmicrohttpd, whose pages they still get); clients that send a broken header block do
 *   not usually send a good one first.
 * - The accept thread peeks once without waiting: a client that sent its request with the
 *   connect (every HTTP client library) costs no thread.  Otherwise a detached gate thread waits
 *   for the rest, with SO_RCVLOWAT set one byte above what it has seen so that poll() wakes on
 *   new bytes, not on the ones already peeked; it gives up (closes) after idle_s seconds without
 *   new bytes, as the daemon's own idle timeout would.
 * - Connections held by the gate and the daemon together are capped (max_pending): beyond it the
 *   accept loop waits, and new connections wait in the kernel's backlog as they did when the
 *   daemon accepted.
 * - aios__gate_check is a pure function of the bytes (fuzz/fuzz_http_gate.c).
 */
#include "server/server_gate.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received */
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"

struct aios__gate {
    int lfd;           /* listening socket */
    int wake[2];       /* a byte written here stops the accept loop */
    pthread_t thr;
    int thr_started;
    int idle_s, max_pending;
    aios__gate_handoff handoff;
    void *user;
    atomic_int stopping;
    atomic_int n_conn;  /* the daemon's open connections (aios__gate_conn) */
    pthread_mutex_t mu; /* guards n_gates */
    pthread_cond_t cv;
    int n_gates;        /* gate threads still looking at a connection */
};

/* ---- the check (pure) ------------------------------------------------------------------- */

static void verdict(aios__gate_verdict *v, int status, const char *code, const char *fmt, const char *arg) {
    v->status = status;
    v->code = code;
    snprintf(v->message, sizeof v->message, fmt, arg ? arg : "");
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* Header name `name` (length nl) equals `want` ignoring case. */
static int name_is(const char *name, size_t nl, const char *want) {
    return strlen(want) == nl && !strncasecmp(name, want, nl);
}

void aios__gate_check(const char *buf, size_t n, int full, aios__gate_verdict *v) {
    memset(v, 0, sizeof *v);
    /* the request line */
    const char *eol = memchr(buf, '\n', n);
    if (!eol) {
        if (full) verdict(v, 414, "uri_too_long", "request line longer than %s bytes", "32768");
        else v->status = -1;
        return;
    }
    /* the end of the header block: an empty line (CRLF CRLF, or bare LF as libmicrohttpd allows) */
    size_t end = 0;
    for (const char *p = eol; p && p < buf + n; p = memchr(p + 1, '\n', (size_t)(buf + n - p - 1))) {
        const char *q = p + 1;
        if (q < buf + n && *q == '\n') { end = (size_t)(q - buf) + 1; break; }
        if (q + 1 < buf + n && q[0] == '\r' && q[1] == '\n') { end = (size_t)(q - buf) + 2; break; }
        if (q >= buf + n) break;
    }
    if (!end) {
        if (full) verdict(v, 431, "request_header_fields_too_large", "request headers larger than %s bytes", "32768");
        else v->status = -1;
        return;
    }
    /* HTTP version: "METHOD SP TARGET SP HTTP/x.y"; anything else is the daemon's to refuse */
    size_t rl = (size_t)(eol - buf);
    if (rl && buf[rl - 1] == '\r') rl--;
    const char *sp1 = memchr(buf, ' ', rl), *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(buf + rl - sp1 - 1)) : NULL;
    if (!sp1 || sp1 == buf || !sp2 || sp2 == sp1 + 1 || (size_t)(buf + rl - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) ||
        (sp2[8] != '0' && sp2[8] != '1')) {
        verdict(v, 400, "invalid_request", "request line is not 'METHOD TARGET HTTP/1.x'%s", NULL);
        return;
    }
    int http11 = sp2[8] == '1';
    int cl_seen = 0, te_seen = 0, hosts = 0;
    unsigned long long cl = 0;
    const char *line = eol + 1;
    while (line < buf + end) {
        const char *nl = memchr(line, '\n', (size_t)(buf + end - line));
        if (!nl) break;
        size_t len = (size_t)(nl - line);
        if (len && line[len - 1] == '\r') len--;
        if (!len) break; /* the empty line */
        const char *colon = memchr(line, ':', len);
        if (colon && colon > line) {
            size_t nlen = (size_t)(colon - line);
            const char *val = colon + 1, *vend = line + len;
            while (val < vend && is_ows(*val)) val++;
            while (vend > val && is_ows(vend[-1])) vend--;
            size_t vl = (size_t)(vend - val);
            if (name_is(line, nlen, "content-length")) {
                unsigned long long x = 0;
                int ok = vl > 0;
                for (size_t i = 0; ok && i < vl; i++) {
                    if (val[i] < '0' || val[i] > '9') ok = 0;
                    else if (x > (UINT64_MAX - (unsigned)(val[i] - '0')) / 10) {
                        verdict(v, 413, "request_too_large", "Content-Length does not fit in 64 bits%s", NULL);
                        return;
                    } else x = x * 10 + (unsigned)(val[i] - '0');
                }
                if (!ok) {
                    verdict(v, 400, "invalid_content_length", "Content-Length is not a decimal number of bytes%s", NULL);
                    return;
                }
                if (cl_seen && x != cl) {
                    verdict(v, 400, "invalid_content_length", "two Content-Length headers with different values%s", NULL);
                    return;
                }
                cl_seen = 1, cl = x;
            } else if (name_is(line, nlen, "transfer-encoding")) {
                if (vl != 7 || strncasecmp(val, "chunked", 7)) {
                    verdict(v, 501, "unsupported_transfer_encoding",
                            "Transfer-Encoding other than chunked is not supported%s", NULL);
                    return;
                }
                te_seen = 1;
            } else if (name_is(line, nlen, "host")) {
                hosts++;
            }
        }
        line = nl + 1;
    }
    if (cl_seen && te_seen) {
        verdict(v, 400, "invalid_content_length", "both Content-Length and Transfer-Encoding given%s", NULL);
        return;
    }
    if (hosts > 1) {
        verdict(v, 400, "invalid_host", "more than one Host header%s", NULL);
        return;
    }
    if (http11 && !hosts) {
        verdict(v, 400, "invalid_host", "no Host header (HTTP version 1.1 requires one)%s", NULL);
        return;
    }
    v->status = 0;
    v->head = end;
    v->content_length = cl;
    v->chunked = te_seen;
}

/* ---- the socket side --------------------------------------------------------------------- */

static const char *reason(int status) {
    switch (status) {
    case 400: return "Bad Request";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    default: return "Error";
    }
}

static void write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pf = {fd, POLLOUT, 0};
            if (poll(&pf, 1, 1000) <= 0) return;
            continue;
        }
        if (w <= 0) return;
        p += w, n -= (size_t)w;
    }
}

/* Answers v's error and closes: the request is read and dropped first (up to a second or 1 MiB),
 * so that closing with unread bytes does not reset the connection before the client reads the
 * answer. */
static void answer(int fd, const aios__gate_verdict *v) {
    char body[400], head[256];
    int bl = snprintf(body, sizeof body,
                      "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,\"code\":\"%s\"}}", v->message,
                      v->status >= 500 ? "server_error" : "invalid_request_error", v->code);
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n",
                      v->status, reason(v->status), bl);
    write_all(fd, head, (size_t)hl);
    write_all(fd, body, (size_t)bl);
    shutdown(fd, SHUT_WR);
    char sink[4096];
    size_t drained = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (drained < (1u << 20)) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0) {
            struct timespec t1;
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if (t1.tv_sec - t0.tv_sec >= 1) break;
            continue;
        }
        ssize_t r = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) break;
        if (r > 0) drained += (size_t)r;
    }
}

static void refuse(int fd, const aios__gate_verdict *v) {
    answer(fd, v);
    close(fd);
}

/* Peeks at what fd has sent: 1 = decided (handed over, refused or closed), 0 = incomplete
 * (*seen: the bytes peeked). */
static int look(aios__gate *g, int fd, const struct sockaddr *addr, socklen_t alen, char *buf, size_t *seen) {
    ssize_t r = recv(fd, buf, AIOS__GATE_PEEK, MSG_PEEK | MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        close(fd); /* the client left (or the socket broke) before a whole request */
        return 1;
    }
    size_t n = r > 0 ? (size_t)r : 0;
    *seen = n;
    aios__gate_verdict v;
    aios__gate_check(buf, n, n >= AIOS__GATE_PEEK, &v);
    if (v.status < 0) return 0;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
    if (v.status > 0) refuse(fd, &v);
    else g->handoff(g->user, fd, addr, alen);
    return 1;
}

typedef struct {
    aios__gate *g;
    int fd;
    struct sockaddr_storage addr;
    socklen_t alen;
} pending;

static void *gate_thread(void *arg) {
    pending *pc = arg;
    aios__gate *g = pc->g;
    char *buf = malloc(AIOS__GATE_PEEK);
    size_t seen = 0, last = 0;
    int idle_ms = 0, done = 0;
    while (buf && !done && !atomic_load(&g->stopping) && idle_ms < g->idle_s * 1000) {
        int low = (int)seen + 1; /* wake on bytes beyond those already seen */
        setsockopt(pc->fd, SOL_SOCKET, SO_RCVLOWAT, &low, sizeof low);
        struct pollfd pf = {pc->fd, POLLIN, 0};
        int pr = poll(&pf, 1, 100);
        if (pr < 0 && errno != EINTR) break;
        if (pr <= 0) { idle_ms += 100; continue; }
        done = look(g, pc->fd, (const struct sockaddr *)&pc->addr, pc->alen, buf, &seen);
        if (!done && seen == last) { /* woke without new bytes (the peer half-closed): do not spin */
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
            idle_ms += 100;
        } else {
            idle_ms = 0;
        }
        last = seen;
    }
    if (!done) close(pc->fd); /* idle, stopping, or out of memory */
    free(buf);
    free(pc);
    pthread_mutex_lock(&g->mu);
    g->n_gates--;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

static void *accept_thread(void *arg) {
    aios__gate *g = arg;
    char *buf = malloc(AIOS__GATE_PEEK);
    while (buf && !atomic_load(&g->stopping)) {
        pthread_mutex_lock(&g->mu);
        int held = g->n_gates + atomic_load(&g->n_conn);
        pthread_mutex_unlock(&g->mu);
        struct pollfd pf[2] = {{g->lfd, POLLIN, 0}, {g->wake[0], POLLIN, 0}};
        if (held >= g->max_pending) { /* full: leave new connections in the backlog for a while */
            poll(&pf[1], 1, 20);
            continue;
        }
        if (poll(pf, 2, -1) < 0 && errno != EINTR) break;
        if (pf[1].revents) break;
        if (!(pf[0].revents & POLLIN)) continue;
        pending *pc = calloc(1, sizeof *pc);
        if (!pc) break;
        pc->g = g;
        pc->alen = sizeof pc->addr;
        pc->fd = accept4(g->lfd, (struct sockaddr *)&pc->addr, &pc->alen, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (pc->fd < 0) {
            free(pc);
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) poll(&pf[1], 1, 50);
            continue;
        }
        size_t seen = 0;
        if (look(g, pc->fd, (const struct sockaddr *)&pc->addr, pc->alen, buf, &seen)) {
            free(pc);
            continue;
        }
        pthread_attr_t at;
        pthread_t t;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, 64u << 10);
        pthread_mutex_lock(&g->mu);
        g->n_gates++;
        int rc = pthread_create(&t, &at, gate_thread, pc);
        if (rc) g->n_gates--;
        pthread_mutex_unlock(&g->mu);
        pthread_attr_destroy(&at);
        if (rc) { /* no thread: let the daemon have it unchecked rather than drop it */
            g->handoff(g->user, pc->fd, (const struct sockaddr *)&pc->addr, pc->alen);
            free(pc);
        }
    }
    free(buf);
    return NULL;
}

/* The daemon's connection thread, after a request of a kept-alive connection: consumed is the
 * number of bytes of every request on it so far.  If the daemon has read exactly those (TCP_INFO's
 * bytes received less what still waits in the socket), it holds nothing of the next request, which
 * is peeked at here as the first one was by the accept loop; otherwise (pipelined requests) the
 * next one is the daemon's alone. */
int aios__gate_next(aios__gate *g, int fd, unsigned long long consumed) {
    if (!g) return -1;
    /* bytes the daemon has read = received - still queued; the queue is read on both sides of
     * TCP_INFO so that bytes arriving in between (the client's next request) cannot count as
     * read (only this thread reads the socket meanwhile) */
    int tries = 0;
    for (;; tries++) {
        struct tcp_info ti;
        socklen_t tl = sizeof ti;
        int inq = 0, inq2 = 0;
        memset(&ti, 0, sizeof ti);
        if (tries == 8 || ioctl(fd, FIONREAD, &inq) || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) ||
            ioctl(fd, FIONREAD, &inq2) || inq < 0 ||
            tl < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received)
            return -1;
        if (inq != inq2) continue;
        if (ti.tcpi_bytes_received - (unsigned long long)inq != consumed) return -1;
        break;
    }
    char *buf = malloc(AIOS__GATE_PEEK);
    int ret = 0, idle_ms = 0;
    size_t last = 0;
    while (buf && !atomic_load(&g->stopping) && idle_ms < g->idle_s * 1000) {
        ssize_t r = recv(fd, buf, AIOS__GATE_PEEK, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            break; /* the daemon sees it */
        size_t n = r > 0 ? (size_t)r : 0;
        if (n) {
            aios__gate_verdict v;
            aios__gate_check(buf, n, n >= AIOS__GATE_PEEK, &v);
            if (v.status > 0) {
                answer(fd, &v);
                shutdown(fd, SHUT_RDWR); /* the daemon reads the end of the connection and closes it */
                ret = 1;
            }
            if (v.status >= 0) break;
        }
        int low = (int)n + 1;
        setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &low, sizeof low);
        struct pollfd pf = {fd, POLLIN, 0};
        int pr = poll(&pf, 1, 100);
        if (pr < 0 && errno != EINTR) break;
        if (pr <= 0) {
            idle_ms += 100;
        } else if (n == last && n) { /* woke without new bytes: do not spin */
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
            idle_ms += 100;
        } else {
            idle_ms = 0;
        }
        last = n;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
    free(buf);
    return ret;
}

aios_status aios__gate_start(const struct sockaddr *sa, socklen_t salen, int idle_s, int max_pending,
                             aios__gate_handoff handoff, void *user, aios__gate **out, int *port) {
    *out = NULL;
    aios__gate *g = calloc(1, sizeof *g);
    if (!g) return aios__err(AIOS_ERR_NOMEM, "server: gate");
    g->lfd = g->wake[0] = g->wake[1] = -1;
    g->idle_s = idle_s > 0 ? idle_s : 30;
    g->max_pending = max_pending > 0 ? max_pending : 96;
    g->handoff = handoff;
    g->user = user;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    int one = 1;
    g->lfd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (g->lfd < 0 || setsockopt(g->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        (sa->sa_family == AF_INET6 && setsockopt(g->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one)) ||
        bind(g->lfd, sa, salen) || listen(g->lfd, 128) || pipe2(g->wake, O_CLOEXEC)) {
        int e = errno;
        aios__gate_free(g);
        return aios__err(AIOS_ERR_IO, "%s", strerror(e));
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    if (!getsockname(g->lfd, (struct sockaddr *)&bound, &bl))
        *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);
    if (pthread_create(&g->thr, NULL, accept_thread, g)) {
        aios__gate_free(g);
        return aios__err(AIOS_ERR_NOMEM, "server: accept thread");
    }
    g->thr_started = 1;
    *out = g;
    return AIOS_OK;
}

void aios__gate_conn(aios__gate *g, int delta) {
    if (g) atomic_fetch_add(&g->n_conn, delta);
}

void aios__gate_stop(aios__gate *g) {
    if (!g || atomic_exchange(&g->stopping, 1)) return;
    if (g->thr_started) {
        char b = 1;
        ssize_t w = write(g->wake[1], &b, 1);
        (void)w;
        pthread_join(g->thr, NULL);
        g->thr_started = 0;
    }
    pthread_mutex_lock(&g->mu);
    while (g->n_gates > 0) pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    if (g->lfd >= 0) close(g->lfd);
    g->lfd = -1;
}

void aios__gate_free(aios__gate *g) {
    if (!g) return;
    aios__gate_stop(g);
    if (g->wake[0] >= 0) close(g->wake[0]);
    if (g->wake[1] >= 0) close(g->wake[1]);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}
