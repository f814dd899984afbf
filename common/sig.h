/* Signals of the whole process.
 *
 * SIGPIPE is ignored for good: every write to a link the host closed
 * (TLS or not, SOAP, authd, NFC) fails with EPIPE instead of ending the
 * process with no word.  A fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE,
 * SIGABRT) leaves one line in the log and on stderr, then ends the
 * process as it would have.
 *
 * SIGTERM, SIGINT and SIGHUP while vmdkfs opens or closes (not while
 * libfuse serves, which takes them over) ask it to stop: the long waits
 * (SOAP calls, task polling, PrepareForAccess retries, NFC handshakes,
 * hotadd attaches) see sig_stop_requested() and give up with -EINTR, and
 * the mount undoes what it did (disks, temporary snapshot, EndAccess).
 * Once sig_cleanup_begin() is called, the undoing runs to its end: a
 * further signal is only logged.
 */
#ifndef VMDKFS_SIG_H
#define VMDKFS_SIG_H

#include <signal.h>
#include <stdbool.h>

/* Install the handlers (once, first thing in main). */
void sig_init(void);

/* The stop signal received while opening (and not yet cleaning up), or 0:
 * a wait that sees it gives up with -EINTR and sig_stop_message(). */
int sig_stop_requested(void);

/* While held (calls nest), sig_stop_requested() says 0: for what must run
 * to its end once begun (a task the server carries out anyway, the undoing
 * of a failed open); the stop is seen after. */
void sig_hold(bool hold);

/* Record "interrupted by SIGTERM" (the signal's name) as the thread's
 * error; returns -EINTR. */
int sig_stop_error(const char *what);

/* From here on the stop signals no longer cancel anything. */
void sig_cleanup_begin(void);

/* libfuse handles the stop signals while it serves: hand them over
 * (SIG_DFL, so that fuse_set_signal_handlers() installs its own) and take
 * them back after fuse_remove_signal_handlers().  sig_handover() returns
 * with them blocked; sig_unblock() lets the pending ones through. */
void sig_handover(void);
void sig_takeback(void);
void sig_unblock(void);

/* Block the stop signals in the calling thread (OLD gets the previous
 * mask): threads made with them blocked leave them to the main thread,
 * whose blocking calls they then interrupt. */
void sig_block_stop(sigset_t *old);

/* "SIGTERM" for 15, ...; "signal N" for others (async-signal-safe). */
const char *sig_name(int sig);

#endif
