/* gw_clock: the monotonic clock, for time-outs, back-offs, rates and ages
 * (never for what is shown as a date: gw_log owns the wall clock). */
#ifndef GW_CLOCK_H
#define GW_CLOCK_H

#include <stdint.h>

/* Milliseconds and whole seconds of CLOCK_MONOTONIC. */
int64_t gw_clock_ms(void);
int64_t gw_clock_s(void);

#endif
