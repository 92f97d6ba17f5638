/*
 * error.c — status codes and per-thread error detail.
 *
 * The code list lives in include/aios.h (one X-macro, append-only).  Detail messages are
 * kept in a thread-local buffer so concurrent handles never clobber each other's errors;
 * aios__err() formats a message and returns the status so call sites read
 * `return aios__err(AIOS_ERR_FORMAT, "parquet: %s: bad magic", path);`.
 */
#include "core/internal.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char g_err[1024];

const char *aios_status_str(aios_status s) {
    switch (s) {
#define AIOS__CASE(name, value, text) \
    case name:                        \
        return text;
        AIOS_STATUS_LIST(AIOS__CASE)
#undef AIOS__CASE
    }
    return "unknown status";
}

const char *aios_status_name(aios_status s) {
    switch (s) {
#define AIOS__CASE(name, value, text) \
    case name:                        \
        return #name;
        AIOS_STATUS_LIST(AIOS__CASE)
#undef AIOS__CASE
    }
    return "AIOS_UNKNOWN";
}

const char *aios_last_error(void) { return g_err; }

void aios_clear_error(void) { g_err[0] = '\0'; }

aios_status aios__err(aios_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    aios_log(AIOS_LOG_DEBUG, "error %s: %s", aios_status_name(s), g_err);
    return s;
}

aios_status aios__err_prefix(aios_status s, const char *fmt, ...) {
    char prefix[512], old[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(old, sizeof old, "%s", g_err);
    snprintf(g_err, sizeof g_err, "%s: %s", prefix, old[0] ? old : aios_status_str(s));
    return s;
}
