// hiredis as Swift sees it. Commands go through redisCommandArgv / redisAppendCommandArgv:
// the printf-style redisCommand is variadic and cannot be called from Swift.
#ifndef SWIFTCHAT_CHIREDIS_SHIM_H
#define SWIFTCHAT_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <sys/time.h>

static inline struct timeval swiftchat_redis_timeval_ms(long long milliseconds) {
    struct timeval tv;
    tv.tv_sec = (time_t)(milliseconds / 1000);
    tv.tv_usec = (suseconds_t)((milliseconds % 1000) * 1000);
    return tv;
}

#endif
