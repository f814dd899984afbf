#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

static bool quiet;

void progress_quiet(bool q)
{
	quiet = q;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void progress_update(struct progress *p, const char *fmt, ...)
{
	bool tty = isatty(STDERR_FILENO);
	char msg[256];
	va_list ap;
	double t = now();

	if (!p->start)
		p->start = t;
	if (quiet || t - p->start < PROGRESS_AFTER_S ||
	    (p->last && t - p->last < (tty ? 0.2 : PROGRESS_EVERY_S)))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (tty) {
		fprintf(stderr, "\r\033[Kvmdkfs: %s", msg);
		p->shown = true;
	} else {
		fprintf(stderr, "vmdkfs: %s\n", msg);
	}
	fflush(stderr);
	p->last = t;
}

void progress_end(struct progress *p)
{
	if (p->shown)
		fputc('\n', stderr);
	p->shown = false;
	p->start = p->last = 0;
}
