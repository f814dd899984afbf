#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "sig.h"

static volatile sig_atomic_t stop_sig;	 /* the first stop signal */
static volatile sig_atomic_t cleaning;	 /* sig_cleanup_begin() called */
static int held;			 /* sig_hold() */

static const int stop_sigs[] = {SIGTERM, SIGINT, SIGHUP};
static const int fatal_sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

const char *sig_name(int sig)
{
	switch (sig) {
	case SIGTERM: return "SIGTERM";
	case SIGINT: return "SIGINT";
	case SIGHUP: return "SIGHUP";
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	case SIGILL: return "SIGILL";
	case SIGFPE: return "SIGFPE";
	case SIGABRT: return "SIGABRT (abort)";
	case SIGPIPE: return "SIGPIPE";
	default: return "a signal";
	}
}

/* Async-signal-safe: the decimal digits of V into BUF (at least 12). */
static const char *utoa(unsigned long v, char *buf)
{
	char *p = buf + 11;

	*p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) && p > buf);
	return p;
}

static void say(int fd, const char *const *parts)
{
	for (; *parts; parts++) {
		size_t len = strlen(*parts);

		if (fd >= 0 && write(fd, *parts, len) < 0)
			return;
	}
}

static void on_fatal(int sig)
{
	char pid[12], num[12];
	const char *line[] = {"vmdkfs[", utoa((unsigned long)getpid(), pid),
			      "]: fatal: ", sig_name(sig), " (signal ",
			      utoa((unsigned long)sig, num),
			      "); the mount ends here: run vmdkfs cleanup "
			      "for what it leaves on the VM\n",
			      NULL};
	int fd = vmdkfs_log_fd();

	say(fd, line);
	if (fd != STDERR_FILENO)
		say(STDERR_FILENO, line);
	/* Again, as it would have been without us: the core, the status. */
	signal(sig, SIG_DFL);
	raise(sig);
}

static void on_stop(int sig)
{
	if (!stop_sig && !cleaning)
		stop_sig = sig;
}

static void set(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

void sig_init(void)
{
	size_t i;

	set(SIGPIPE, SIG_IGN, 0);
	for (i = 0; i < sizeof(fatal_sigs) / sizeof(*fatal_sigs); i++)
		set(fatal_sigs[i], on_fatal, SA_RESETHAND | SA_NODEFER);
	/* No SA_RESTART: a blocking call of the thread that takes the
	 * signal ends with EINTR. */
	for (i = 0; i < sizeof(stop_sigs) / sizeof(*stop_sigs); i++)
		set(stop_sigs[i], on_stop, 0);
}

int sig_stop_requested(void)
{
	return cleaning || __atomic_load_n(&held, __ATOMIC_RELAXED) ? 0
								     : stop_sig;
}

void sig_hold(bool hold)
{
	__atomic_add_fetch(&held, hold ? 1 : -1, __ATOMIC_RELAXED);
}

int sig_stop_error(const char *what)
{
	vmdkfs_error("%s: interrupted by %s", what, sig_name(stop_sig));
	return -EINTR;
}

void sig_cleanup_begin(void)
{
	cleaning = 1;
	if (stop_sig)
		log_warn("stopping on %s: undoing what was done",
			 sig_name(stop_sig));
}

static void stop_set(sigset_t *s)
{
	size_t i;

	sigemptyset(s);
	for (i = 0; i < sizeof(stop_sigs) / sizeof(*stop_sigs); i++)
		sigaddset(s, stop_sigs[i]);
}

void sig_block_stop(sigset_t *old)
{
	sigset_t s;

	stop_set(&s);
	pthread_sigmask(SIG_BLOCK, &s, old);
}

void sig_handover(void)
{
	size_t i;

	sig_block_stop(NULL);
	for (i = 0; i < sizeof(stop_sigs) / sizeof(*stop_sigs); i++)
		set(stop_sigs[i], SIG_DFL, 0);
}

void sig_unblock(void)
{
	sigset_t s;

	stop_set(&s);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
}

void sig_takeback(void)
{
	size_t i;

	/* Whatever ended the loop, what follows is the undoing. */
	cleaning = 1;
	for (i = 0; i < sizeof(stop_sigs) / sizeof(*stop_sigs); i++)
		set(stop_sigs[i], on_stop, 0);
	sig_unblock();
}
