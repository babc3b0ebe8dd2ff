/* Stylesheet rewrite throughput (not a test; scripts/bench-proxy.sh runs it on a release build).
 * For each file: css_rewrite with hover rewriting and a URL callback that returns a fixed
 * string (what the proxy does), against a plain memcpy of the same bytes into a fresh buffer,
 * both measured in the same run, in alternating rounds of at least 50 ms of this thread's CPU
 * time (not wall time: the machine is shared, and a core's throughput is what we want); prints the
 * median MB/s (10^6 bytes) of each, one line per file: name bytes rewrite_mbs copy_mbs. Usage:
 * rewrite_bench [-r rounds] FILE... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/proxy/css.h"

static volatile unsigned char sink;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fixed_url(void *arg, enum css_url_kind kind, const char *url, size_t len, char **r)
{
    (void)arg, (void)kind, (void)url, (void)len;
    *r = strdup("/v1/proxy/tenant.session.1700000000.mac/asset/aHR0cHM6Ly9leGFtcGxlLmNvbS9h");
    return *r ? 0 : -1;
}

static int rewrite_once(const char *in, size_t n)
{
    struct css_buf out = {0};
    int r = css_rewrite(in, n, fixed_url, NULL, &out);
    sink ^= out.len ? (unsigned char)out.data[out.len - 1] : 0;
    css_buf_free(&out);
    return r;
}

static int copy_once(const char *in, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return -1;
    memcpy(p, in, n);
    sink ^= (unsigned char)p[n / 2];
    free(p);
    return 0;
}

/* One round: repeats f until 50 ms have passed; returns MB/s, or -1 on failure. */
static double round_mbs(int (*f)(const char *, size_t), const char *in, size_t n)
{
    double t0 = now(), t;
    size_t iters = 0;
    do {
        if (f(in, n) < 0)
            return -1;
        iters++;
    } while ((t = now()) - t0 < 0.05);
    return (double)n * (double)iters / (t - t0) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *p = NULL;
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (len >= 0 && fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)len + 1)) &&
        fread(p, 1, (size_t)len, f) != (size_t)len) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = (size_t)(len < 0 ? 0 : len);
    return p;
}

int main(int argc, char **argv)
{
    int rounds = 15, a = 1;
    if (argc > 2 && !strcmp(argv[1], "-r")) {
        rounds = atoi(argv[2]);
        a = 3;
    }
    if (a >= argc || rounds < 1 || rounds > 1000) {
        fprintf(stderr, "usage: %s [-r rounds] FILE...\n", argv[0]);
        return 2;
    }
    double *rw = calloc((size_t)rounds, sizeof *rw), *cp = calloc((size_t)rounds, sizeof *cp);
    int status = rw && cp ? 0 : 1;
    for (; a < argc && status == 0; a++) {
        size_t n;
        char *in = read_all(argv[a], &n);
        if (!in) {
            fprintf(stderr, "cannot read %s\n", argv[a]);
            status = 1;
            break;
        }
        for (int r = 0; r < rounds && status == 0; r++) {
            rw[r] = round_mbs(rewrite_once, in, n);
            cp[r] = round_mbs(copy_once, in, n);
            status = rw[r] < 0 || cp[r] < 0;
        }
        qsort(rw, (size_t)rounds, sizeof *rw, cmp_double);
        qsort(cp, (size_t)rounds, sizeof *cp, cmp_double);
        const char *name = strrchr(argv[a], '/') ? strrchr(argv[a], '/') + 1 : argv[a];
        if (status == 0)
            printf("%s %zu %.1f %.1f\n", name, n, rw[rounds / 2], cp[rounds / 2]);
        free(in);
    }
    free(rw);
    free(cp);
    return status;
}
