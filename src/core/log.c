/*
 * log.c — levelled logging on stderr.
 *
 * Level comes from AIOS_LOG (debug|info|warn|error|off), read once; aios_log_set_level()
 * overrides it.  Each line is written with one fprintf so lines from threads do not
 * interleave mid-line.
 */
#include "core/internal.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static atomic_int g_level = -1;

int aios_log_level_parse(const char *s) {
    if (!s) return -1;
    if (!strcasecmp(s, "debug")) return AIOS_LOG_DEBUG;
    if (!strcasecmp(s, "info")) return AIOS_LOG_INFO;
    if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning")) return AIOS_LOG_WARN;
    if (!strcasecmp(s, "error")) return AIOS_LOG_ERROR;
    if (!strcasecmp(s, "off") || !strcasecmp(s, "none")) return AIOS_LOG_OFF;
    return -1;
}

aios_log_level aios_log_get_level(void) {
    int l = atomic_load(&g_level);
    if (l < 0) {
        l = aios_log_level_parse(getenv("AIOS_LOG"));
        if (l < 0) l = AIOS_LOG_WARN;
        atomic_store(&g_level, l);
    }
    return (aios_log_level)l;
}

void aios_log_set_level(aios_log_level level) { atomic_store(&g_level, (int)level); }

void aios_log(aios_log_level level, const char *fmt, ...) {
    if (level < aios_log_get_level()) return;
    static const char *names[] = {"debug", "info", "warn", "error"};
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "aios %s: %s\n", names[level > AIOS_LOG_ERROR ? AIOS_LOG_ERROR : level], msg);
}
