/* One updating line on stderr for long waits (a snapshot task, retries):
 * on a terminal the line is rewritten in place; otherwise a line is
 * written at most every PROGRESS_EVERY_S seconds, so a log of stderr does
 * not fill up.  progress_quiet(true) (-o quiet) silences it. */
#ifndef VMDKFS_PROGRESS_H
#define VMDKFS_PROGRESS_H

#include <stdbool.h>

#define PROGRESS_EVERY_S 5
#define PROGRESS_AFTER_S 1 /* a wait shorter than this shows nothing */

struct progress {
	double start; /* the first update (s, monotonic) */
	double last;  /* when a line was last written */
	bool shown;   /* a line is on the terminal, not yet ended */
};

void progress_quiet(bool quiet);
/* Show "vmdkfs: " + the message, as often as the output allows. */
void progress_update(struct progress *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* End the line (on a terminal) once the wait is over. */
void progress_end(struct progress *p);

#endif
