#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

static __thread char errbuf[2048];

void vmdkfs_error(const char *fmt, ...)
{
	int saved = errno;
	char tmp[sizeof(errbuf)];
	va_list ap;

	/* Through a copy: the arguments may include vmdkfs_errmsg() itself,
	 * to add context to the message below. */
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	memcpy(errbuf, tmp, sizeof(errbuf));
	errno = saved;
}

const char *vmdkfs_errmsg(void)
{
	return errbuf;
}

void vmdkfs_error_clear(void)
{
	errbuf[0] = '\0';
}

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_fp;
static volatile int log_fd = -1; /* log_fp's, for signal handlers */
static int log_level;
static int stderr_level = -1;

/* The log's path, and whether it is named after this process. */
static char log_path[4096];
static bool log_by_pid;

int vmdkfs_log_open(const char *dir, const char *file, int level)
{
	FILE *fp;

	if (level <= 0)
		return 0;
	if (file)
		snprintf(log_path, sizeof(log_path), "%s", file);
	else
		snprintf(log_path, sizeof(log_path), "%s/vmdkfs-%d.log", dir,
			 (int)getpid());
	log_by_pid = !file;
	fp = fopen(log_path, "ae");
	if (!fp) {
		int e = errno;

		vmdkfs_error("%s: cannot open log file: %s", log_path,
			     strerror(e));
		return -e;
	}
	setvbuf(fp, NULL, _IOLBF, 0);
	pthread_mutex_lock(&log_lock);
	if (log_fp)
		fclose(log_fp);
	log_fp = fp;
	log_fd = fileno(fp);
	log_level = level;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void vmdkfs_log_follow_pid(void)
{
	char to[sizeof(log_path)], *slash;
	int n;

	if (!log_fp || !log_by_pid)
		return;
	slash = strrchr(log_path, '/');
	n = snprintf(to, sizeof(to), "%.*s/vmdkfs-%d.log",
		     slash ? (int)(slash - log_path) : 1,
		     slash ? log_path : ".", (int)getpid());
	if (n >= (int)sizeof(to) || strcmp(to, log_path) == 0)
		return;
	/* The open stream goes on writing to the renamed file. */
	if (rename(log_path, to) == 0)
		memcpy(log_path, to, sizeof(to));
	else
		vmdkfs_log(LOG_WARN, "%s: cannot rename to %s: %s", log_path,
			   to, strerror(errno));
}

void vmdkfs_log_close(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_fp)
		fclose(log_fp);
	log_fp = NULL;
	log_fd = -1;
	log_level = 0;
	pthread_mutex_unlock(&log_lock);
}

int vmdkfs_log_fd(void)
{
	return log_fd;
}

int vmdkfs_log_level(void)
{
	return log_level > stderr_level ? log_level : stderr_level;
}

void vmdkfs_log_stderr(int level)
{
	stderr_level = level;
}

static void (*sink)(int level, const char *msg);
static int sink_level;

void vmdkfs_log_sink(void (*fn)(int level, const char *msg), int level)
{
	sink = fn;
	sink_level = fn ? level : 0;
}

static const char *const level_names[] = {
    "quiet", "error", "warning", "info", "verbose", "debug", "trace",
};

void vmdkfs_log(int level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	int saved = errno;

	if (level > log_level && level > stderr_level && level > sink_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (level <= stderr_level)
		fprintf(stderr, "vmdkfs: %s: %s\n", level_names[level], msg);
	if (sink && level <= sink_level)
		sink(level, msg);
	if (level <= log_level) {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		pthread_mutex_lock(&log_lock);
		if (log_fp)
			fprintf(log_fp, "%s.%03ldZ [%ld] %s: %s\n", when,
				ts.tv_nsec / 1000000, (long)syscall(SYS_gettid),
				level_names[level], msg);
		pthread_mutex_unlock(&log_lock);
	}
	errno = saved;
}
