/* Thread-local error messages and the log file.
 *
 * Functions return 0 or -errno; the place that detects a problem records a
 * message with vmdkfs_error() and the caller that reports it prints
 * vmdkfs_errmsg().  Messages name the file, the field and the problem.
 */
#ifndef VMDKFS_ERR_H
#define VMDKFS_ERR_H

#include <stdarg.h>

/* Record the thread's error message (printf format).  Returns nothing;
 * errno is preserved so that "%m" works. */
void vmdkfs_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The last message recorded by this thread ("" if none). */
const char *vmdkfs_errmsg(void);

/* Forget the thread's message. */
void vmdkfs_error_clear(void);

/* Log levels, as VDDK's vixDiskLib.transport.LogLevel (0 quiet .. 6). */
enum {
	LOG_QUIET = 0,
	LOG_ERROR = 1,
	LOG_WARN = 2,
	LOG_INFO = 3,
	LOG_VERBOSE = 4,
	LOG_DEBUG = 5,
	LOG_TRACE = 6,
};

/* Open the log file in DIR (vmdkfs-PID.log); level 0 disables logging.
 * Returns 0 or -errno. */
/* Open the log: FILE, or DIR/vmdkfs-PID.log when FILE is NULL; LEVEL 0:
 * no log. */
int vmdkfs_log_open(const char *dir, const char *file, int level);
/* After a fork: a log named after the old PID takes the new one's. */
void vmdkfs_log_follow_pid(void);
void vmdkfs_log_close(void);
int vmdkfs_log_level(void);
/* The log file's descriptor or -1: for a signal handler's last line. */
int vmdkfs_log_fd(void);
/* Also copy messages at or below LOG_WARN to stderr (foreground/debug). */
void vmdkfs_log_stderr(int level);

/* Also give messages at or below LEVEL to FN (a front end's own log:
 * nbdkit's); NULL: none. */
void vmdkfs_log_sink(void (*fn)(int level, const char *msg), int level);

/* Thread-safe: one line per call, with time and thread id. */
void vmdkfs_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) vmdkfs_log(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) vmdkfs_log(LOG_WARN, __VA_ARGS__)
#define log_info(...) vmdkfs_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) vmdkfs_log(LOG_DEBUG, __VA_ARGS__)

#endif
