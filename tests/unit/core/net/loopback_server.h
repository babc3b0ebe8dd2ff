/* The fetcher test's HTTP server (tests only): one thread serving canned responses on loopback
 * listeners (127.0.0.1, 127.0.0.2 and, where the machine has it, ::1), one connection at a time,
 * Connection: close; it counts connections per listener so that a test can show none was made.
 * Its routes are in handle() (loopback_server.c). Nothing here reaches beyond loopback.
 * Threading: lsrv_start/lsrv_stop on the test's main thread (cmocka group setup and teardown);
 * lsrv_conns/lsrv_held from any thread (under lsrv.mu). */
#ifndef COBROWSE_TESTS_PROXY_LOOPBACK_SERVER_H
#define COBROWSE_TESTS_PROXY_LOOPBACK_SERVER_H

#include <pthread.h>
#include <stddef.h>

#define MAX_BYTES (64 * 1024)       /* the tests fetchers' max_bytes: the bomb decodes past it */
#define BOMB_SIZE (4 * 1024 * 1024) /* decoded; about 4 KB on the wire */

enum { L_127_0_0_1, L_127_0_0_2, L_IPV6, L_COUNT };
#define MAX_HELD 8

struct lsrv {
    int lfd[L_COUNT];
    int port[L_COUNT];
    int stop[2]; /* a pipe: written to stop the thread */
    pthread_t thread;
    pthread_mutex_t mu;
    int conns[L_COUNT];  /* guarded by mu */
    int held[MAX_HELD];  /* "/hold" connections, answered never; server thread only */
    int nheld, max_held; /* guarded by mu */
    unsigned char *bomb;
    size_t bomb_len;
};

extern struct lsrv lsrv;

/* cmocka group setup and teardown: 0 or -1. */
int lsrv_start(void **state);
int lsrv_stop(void **state);
/* Connections a listener accepted so far. */
int lsrv_conns(int listener);
/* "/hold" connections held open right now. */
int lsrv_held(void);

#endif
