/*
 * server_gate.h — the server's front door (internal): it owns the listening socket, looks at
 * the header block of each connection's first request before libmicrohttpd sees it, answers
 * what libmicrohttpd would answer with its own HTML pages (malformed or conflicting
 * Content-Length, oversized header block or request line, unknown Transfer-Encoding) with the
 * server's JSON errors, and hands every other connection to the daemon (MHD_add_connection).
 */
#ifndef AIOS_SERVER_GATE_H
#define AIOS_SERVER_GATE_H

#include <stddef.h>
#include <sys/socket.h>

#include "aios.h"

/* The most header bytes the gate looks at: a first request whose request line or header block
 * does not end within them gets a JSON 414 / 431. */
#define AIOS__GATE_PEEK (32u << 10)

/* What aios__gate_check decided about a header block. */
typedef struct {
    int status;         /* 0: pass to the daemon; -1: incomplete, wait for more; else the HTTP status */
    const char *code;   /* OpenAI error code ("invalid_content_length", ...) */
    char message[160];  /* the error message */
    size_t head;        /* status 0: the header block's length (request line to empty line) */
    unsigned long long content_length; /* status 0: its Content-Length (0 without one) */
    int chunked;                       /* status 0: Transfer-Encoding: chunked (its body's length unknown) */
} aios__gate_verdict;

/* Looks at the first n bytes a client sent (n <= AIOS__GATE_PEEK; `full`: no more will be
 * looked at).  Pure function of its input: fuzzed by fuzz/fuzz_http_gate.c. */
void aios__gate_check(const char *buf, size_t n, int full, aios__gate_verdict *v);

/* Hands an accepted connection (non-blocking socket) to the daemon; the callee owns fd. */
typedef void (*aios__gate_handoff)(void *user, int fd, const struct sockaddr *addr, socklen_t addrlen);

typedef struct aios__gate aios__gate;

/* Binds and listens on sa, then accepts on a thread of its own.  idle_s: seconds a client may
 * send nothing while its first header block is incomplete; max_pending: connections the gate
 * and the daemon hold together before new ones wait in the kernel's backlog.  *port: the bound
 * port (for port 0). */
aios_status aios__gate_start(const struct sockaddr *sa, socklen_t salen, int idle_s, int max_pending,
                             aios__gate_handoff handoff, void *user, aios__gate **out, int *port);
/* The daemon's connection count, for max_pending: call on each opened / closed connection. */
void aios__gate_conn(aios__gate *g, int delta);

/* Called by the daemon's connection thread after a request on a connection that stays open,
 * consumed = the bytes of all its requests so far: waits (up to the idle timeout) for the next
 * request's header block and checks it as the first one was.  1: refused with a JSON error and
 * the socket shut down (the daemon then closes it); 0: the next request is the daemon's; -1: not
 * looked at (the daemon has read past the requests counted: pipelining). */
int aios__gate_next(aios__gate *g, int fd, unsigned long long consumed);
/* Stops accepting, waits for the connections still being looked at (each closes within a
 * tenth of a second) and closes the listening socket.  Call before stopping the daemon; the
 * daemon's connection threads may still call aios__gate_conn until it has stopped. */
void aios__gate_stop(aios__gate *g);
/* Frees the gate (stopping it first if needed): after the daemon has stopped.  NULL is a no-op. */
void aios__gate_free(aios__gate *g);

#endif
