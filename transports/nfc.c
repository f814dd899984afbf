/* nbd and nbdssl: VMware's NFC protocol to the ESXi host, through authd.
 * What goes on the wire is what cloudbase OpenVixDiskLib recorded VDDK
 * sending to real ESXi hosts (docs/nfc_auth.md, nfc_open.md, nfc_read.md,
 * nfc_write.md there; tests/lab/nfc_records.json has the table, each row
 * citing its file); ../shared/notes/nfc-protocol.md has the rest.  Where
 * the sources leave a choice it is marked CHOICE.
 *
 * One TCP connection per open disk.  Requests on it are serialised by the
 * disk's lock (the connection is the disk's own); a read is split into
 * requests of at most NFC_MAX_IO bytes and up to BufCount of them are sent
 * before the replies are read, so several are in flight; reply fragments
 * are placed by their offsets, in any order.  A dropped link or an expired
 * ticket: a new ticket, a new connection, the request again, at most
 * NFC_RETRIES times; then EIO with the reason logged.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../common/err.h"
#include "../common/sig.h"
#include "../vsphere/vsphere.h"
#include "transport.h"

#define AIO_MAGIC 0xA100DA7Au
#define MSG_LEN 264
/* CHOICE: the largest request.  One source reads at most 1 MiB per
 * request (32 in flight), the other saw 2 MiB accepted and 16 MiB refused:
 * 1 MiB is safe with both, and the default of -o nfc_max_io=. */
#define NFC_MAX_IO (1u << 20)
#define NFC_MAX_IO_LIMIT (8u << 20)
#define NFC_RETRIES 3

enum aio_type {
	AIO_ERROR = 1,
	AIO_OPEN_SESSION = 2,
	AIO_CLOSE_SESSION = 3,
	AIO_OPEN_FILE = 4,
	AIO_CLOSE_FILE = 5,
	AIO_IO = 7,
	AIO_SET_SOCK_OPTS = 9,
	AIO_SET_RES_POOL = 22,
};

/* The classic 264-byte messages (nfc_open.md, "Classic 264-byte
 * messages"). */
enum msg_type {
	MSG_SESSION_COMPLETE = 4,
	MSG_SESSION_PARAMS = 33,
	MSG_SESSION_PARAMS_REPLY = 36,
	MSG_HANDSHAKE = 43,
	MSG_VERSION = 51,
	MSG_AIO_SESSION_OPEN = 52,
	MSG_CONNECTION_DATA = 54,
	MSG_SESSION_FEATURES = 55,
};

/* The NFC version VDDK sends, and the least it accepts from the host
 * (nfc_open.md: 11; "connection info requires version >= 3"). */
#define NFC_VERSION 11
#define NFC_VERSION_MIN 3

struct nfc_disk {
	struct disk d;
	pthread_mutex_t lock; /* the connection: one exchange at a time */
	struct disk_spec spec;
	char *vm, *ds_path;
	bool ssl; /* nbdssl */
	char *snapshot; /* the snapshot's moref, or NULL: current disks */
	int fd;
	SSL_CTX *ctx;
	SSL *tls; /* nbdssl's second session, or NULL */
	uint64_t handle;
	uint32_t op; /* the next opId: 0 on each new link */
	time_t last_use;
	uint32_t bufsize;
	uint32_t max_io; /* bytes per request */
	/* Reads in flight: the one asked for and, on a sequential stream,
	 * those ahead of it (at most BufCount in all). */
	struct nfc_slot *slots;
	uint32_t nslots;
	uint64_t seq;	   /* of the last read request sent */
	uint64_t last_end; /* end of the previous read, to see a stream */
	uint64_t hole_at;  /* where a stream in a hole began, or NO_HOLE */
	/* Reads, and those whose first bytes were asked for by an earlier
	 * one (the read-ahead at work): logged at the close. */
	uint64_t nreads, nreads_ahead;
	/* The timeouts on the socket now, named for the errors. */
	const char *rt_key, *wt_key;
	uint32_t rt_ms, wt_ms;
	/* authd: when the current step must be over (CLOCK_MONOTONIC ms;
	 * 0: no limit), its timeout key and value. */
	uint64_t until;
	const char *until_key;
	uint32_t until_limit;
	uint32_t close_file, close_session; /* payload bytes (-o nfc_close) */
	/* Bytes received past what was asked for (nbd): a receive into a
	 * caller's buffer also takes what follows, the next header usually,
	 * so that a fragment costs one system call, not three. */
	char *rx;
	size_t rx_at, rx_len;
};

#define RX_SIZE (64u << 10)

/* A stream reading a hole between areas of data (d.ahead_data) reads
 * every byte once it is further than this into it: the kernel's own
 * read-ahead past the end of an area (a backup reading only the areas,
 * cp --sparse) goes no further at the mount's default readahead=1024. */
#define HOLE_RUN (1u << 20)
#define NO_HOLE UINT64_MAX

/* The longest a wait sleeps without looking for a stop signal. */
#define STOP_SLICE_MS 250u

/* The longest a close waits for each answer of the host. */
#define CLOSE_WAIT_MS 10000u

/* One read request of at most NFC_MAX_IO bytes and its reply. */
struct nfc_slot {
	bool used;
	uint64_t seq;		 /* request order (replies come in it) */
	uint64_t off, len, left; /* bytes: disk offset, length, missing */
	char *buf;
	char *dst; /* where its bytes go: buf, or straight to the reader */
	uint8_t seen[NFC_MAX_IO_LIMIT / 512 / 8]; /* sectors received */
};

static void slots_free(struct nfc_disk *n);
static void nfc_free(struct nfc_disk *n);
static void slots_drop(struct nfc_disk *n);

/* vixDiskLib.nfc.LogLevel, per disk: 1 error, 2 warning, 3 info,
 * 4 debug; messages go to the log file like the rest. */
static void nfc_log(const struct nfc_disk *n, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void nfc_log(const struct nfc_disk *n, int level, const char *fmt, ...)
{
	static const int to_vmdkfs[] = {0, LOG_ERROR, LOG_WARN, LOG_INFO,
					LOG_DEBUG};
	char msg[1024];
	va_list ap;

	if (level > n->spec.nfc_log_level || level < 1 || level > 4)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vmdkfs_log(to_vmdkfs[level], "%s", msg);
}

/* ---- Bytes on the link ---- */

/* A send or receive on the link failed: a timeout (errno EAGAIN) gives
 * TIMED_OUT and -ETIMEDOUT, anything else BROKE and ERR. */
static int link_failed(const struct nfc_disk *n, const char *timed_out,
		       const char *broke, int err)
{
	if (errno == EINTR && sig_stop_requested())
		return sig_stop_error(n->ds_path);
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		vmdkfs_error("%s: NFC: %s", n->ds_path, timed_out);
		return -ETIMEDOUT;
	}
	vmdkfs_error("%s: NFC: %s", n->ds_path, broke);
	return err;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The socket does not block: wait until it is ready for EVENTS, until
 * UNTIL (CLOCK_MONOTONIC ms; 0: no limit), in slices so that a stop
 * signal taken by another thread is seen while opening.  0, or -1 with
 * errno (EAGAIN: the time is up, EINTR: a stop signal). */
static int link_wait(const struct nfc_disk *n, short events, uint64_t until)
{
	struct pollfd p = {.fd = n->fd, .events = events};

	for (;;) {
		uint64_t now = now_ms();
		int ms = (int)STOP_SLICE_MS, k;

		if (sig_stop_requested()) {
			errno = EINTR;
			return -1;
		}
		if (until && now >= until) {
			errno = EAGAIN;
			return -1;
		}
		if (until && until - now < STOP_SLICE_MS)
			ms = (int)(until - now);
		k = poll(&p, 1, ms);
		if (k > 0)
			return 0;
		if (k < 0 && errno != EINTR)
			return -1;
	}
}

/* authd's steps: the next one must be over within MS (the timeout KEY;
 * 0: no limit), however the host sends. */
static void step_begin(struct nfc_disk *n, const char *key, uint32_t ms)
{
	n->until = ms ? now_ms() + ms : 0;
	n->until_key = key;
	n->until_limit = ms;
}

/* One send or receive of at most LEN bytes: > 0 bytes moved; 0 the host
 * closed the link; -1 with errno, and *EVENTS what to wait for when
 * errno is EAGAIN. */
static ssize_t link_io(struct nfc_disk *n, bool out, void *buf, size_t len,
		       short *events)
{
	int k, e;

	*events = out ? POLLOUT : POLLIN;
	if (!n->tls && out)
		return send(n->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (!n->tls) {
		struct iovec iov[2] = {{buf, len}, {n->rx, RX_SIZE}};
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
		ssize_t got = recvmsg(n->fd, &mh, MSG_DONTWAIT);

		if (got <= (ssize_t)len)
			return got;
		n->rx_at = 0; /* link_read() emptied it before */
		n->rx_len = (size_t)got - len;
		return (ssize_t)len;
	}
	if (len > INT_MAX)
		len = INT_MAX;
	errno = 0; /* OpenSSL's error queue is empty: see with_retries() */
	k = out ? SSL_write(n->tls, buf, (int)len)
		: SSL_read(n->tls, buf, (int)len);
	if (k > 0)
		return k;
	e = SSL_get_error(n->tls, k);
	ERR_clear_error();
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e != SSL_ERROR_SYSCALL || errno == 0 || errno == EAGAIN)
		errno = EPROTO;
	return -1;
}

/* Move LEN bytes (one message, header or data fragment) to or from the
 * link, all of them within TIMEOUT_MS (0: no limit): a host that
 * trickles a byte at a time is cut off like one that sends nothing. */
static int link_move(struct nfc_disk *n, bool out, void *buf, size_t len,
		     uint32_t timeout_ms)
{
	uint64_t until = timeout_ms ? now_ms() + timeout_ms : 0;
	char *p = buf;

	while (len > 0) {
		short ev;
		ssize_t k = link_io(n, out, p, len, &ev);

		if (k > 0) {
			p += k;
			len -= (size_t)k;
			continue;
		}
		if (k == 0) {
			errno = ECONNRESET;
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN || link_wait(n, ev, until) < 0)
			return -1;
	}
	return 0;
}

static int link_write(struct nfc_disk *n, const void *buf, size_t len)
{
	char why[128];
	int e;

	if (link_move(n, true, (void *)buf, len, n->wt_ms) == 0)
		return 0;
	e = errno;
	snprintf(why, sizeof(why),
		 "the host took nothing within the write timeout (%s=%u)",
		 n->wt_key, n->wt_ms);
	errno = e;
	return link_failed(n, why, "the link broke while sending", -EPIPE);
}

static int link_read(struct nfc_disk *n, void *buf, size_t len)
{
	char why[128];
	size_t k = len < n->rx_len ? len : n->rx_len;
	int e;

	memcpy(buf, n->rx + n->rx_at, k);
	n->rx_at += k;
	n->rx_len -= k;
	if (k == len || link_move(n, false, (char *)buf + k, len - k,
				  n->rt_ms) == 0)
		return 0;
	e = errno;
	snprintf(why, sizeof(why), "no answer within %s=%u",
		 n->rt_key, n->rt_ms);
	errno = e;
	return link_failed(n, why, "the host closed the link", -ECONNRESET);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
	p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- authd ---- */

/* Compare two thumbprints, ignoring case and separators. */
static bool same_thumb(const char *a, const char *b)
{
	while (*a || *b) {
		while (*a == ':' || *a == ' ')
			a++;
		while (*b == ':' || *b == ' ')
			b++;
		if ((*a | 0x20) != (*b | 0x20))
			return false;
		if (*a)
			a++;
		if (*b)
			b++;
	}
	return true;
}

/* Timeout keys, in the order of spec.nfc_timeout_ms. */
static const char *const timeout_key[6] = {
    "vixDiskLib.nfc.AcceptTimeoutMs", "vixDiskLib.nfc.RequestTimeoutMs",
    "vixDiskLib.nfc.ReadTimeoutMs",   "vixDiskLib.nfc.WriteTimeoutMs",
    "vixDiskLib.nfcFssrvr.TimeoutMs", "vixDiskLib.nfcFssrvrWrite.TimeoutMs"};

/* authd's step did not complete (K the OpenSSL result of S, or -1 with
 * errno for a plain receive): true once it may be called again (the
 * socket is ready); else false with errno EAGAIN (the step's time is
 * up), EINTR (a stop signal) or another error (ECONNRESET: the link
 * ended). */
static bool step_retry(const struct nfc_disk *n, SSL *s, int k)
{
	int e = s ? SSL_get_error(s, k) : SSL_ERROR_SYSCALL;

	if (s)
		ERR_clear_error();
	if (e == SSL_ERROR_WANT_READ)
		return link_wait(n, POLLIN, n->until) == 0;
	if (e == SSL_ERROR_WANT_WRITE)
		return link_wait(n, POLLOUT, n->until) == 0;
	if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EINTR))
		return link_wait(n, POLLIN, n->until) == 0;
	if (e == SSL_ERROR_ZERO_RETURN || errno == 0 || errno == EAGAIN)
		errno = ECONNRESET;
	return false;
}

/* The error of a step that gave up: WHAT timed out, was interrupted, or
 * the link broke. */
static int step_failed(const struct nfc_disk *n, const char *what, int err)
{
	char why[200];
	int e = errno;

	snprintf(why, sizeof(why), "%s within %s=%u", what,
		 n->until_key ? n->until_key : "the timeout", n->until_limit);
	errno = e;
	return link_failed(n, why, what, err);
}

/* A TLS client session on N's socket whose certificate has SHA-1
 * thumbprint SHA1 (from the ticket).  SHA256_OUT gets its SHA-256. */
static int tls_start(struct nfc_disk *n, const char *sha1, SSL **out,
		     char *sha256_out, size_t size)
{
	char seen[100];
	X509 *cert;
	SSL *s = SSL_new(n->ctx);
	int k;

	if (!s)
		return -ENOMEM;
	SSL_set_fd(s, n->fd);
	do {
		ERR_clear_error();
		errno = 0;
		k = SSL_connect(s);
	} while (k != 1 && step_retry(n, s, k));
	if (k != 1) {
		int r = errno == EINTR || errno == EAGAIN
			    ? step_failed(n, "no TLS handshake with authd",
					  -ETIMEDOUT)
			    : -ECONNREFUSED;

		if (r == -ECONNREFUSED)
			vmdkfs_error("%s: NFC: TLS handshake with authd failed",
				     n->ds_path);
		SSL_free(s);
		return r;
	}
	cert = SSL_get1_peer_certificate(s);
	if (!cert) {
		vmdkfs_error("%s: NFC: authd sent no certificate", n->ds_path);
		SSL_free(s);
		return -EACCES;
	}
	vs_cert_digest(cert, EVP_sha1(), seen, sizeof(seen), true);
	vs_cert_digest(cert, EVP_sha256(), sha256_out, size, true);
	X509_free(cert);
	if (!sha1 || !same_thumb(seen, sha1)) {
		vmdkfs_error("%s: NFC: authd's certificate (SHA-1 %s) is not "
			     "the one the ticket names (%s)",
			     n->ds_path, seen, sha1 ? sha1 : "none");
		SSL_free(s);
		return -EACCES;
	}
	*out = s;
	return 0;
}

/* One line from the TLS session S (up to CRLF), within the step. */
static int tls_line(struct nfc_disk *n, SSL *s, char *buf, size_t size)
{
	size_t len = 0;

	while (len + 1 < size) {
		char c;
		int k;

		ERR_clear_error();
		errno = 0;
		k = SSL_read(s, &c, 1);
		if (k != 1) {
			if (step_retry(n, s, k))
				continue;
			return step_failed(n, errno == ECONNRESET
						  ? "authd closed the link"
						  : "authd gave no answer",
					   -ECONNRESET);
		}
		if (c == '\n')
			break;
		if (c != '\r')
			buf[len++] = c;
	}
	buf[len] = '\0';
	return 0;
}

static int tls_say(struct nfc_disk *n, SSL *s, const char *line)
{
	int len = (int)strlen(line), k;

	do {
		ERR_clear_error();
		errno = 0;
		k = SSL_write(s, line, len);
	} while (k <= 0 && step_retry(n, s, k));
	if (k == len)
		return 0;
	return step_failed(n, "authd took no request", -EPIPE);
}

/* Send LINE to authd and read its answer into ANSWER, within
 * RequestTimeoutMs. */
static int tls_ask(struct nfc_disk *n, SSL *s, const char *line, char *answer,
		   size_t size)
{
	int r;

	step_begin(n, timeout_key[1], n->spec.nfc_timeout_ms[1]);
	r = tls_say(n, s, line);
	return r < 0 ? r : tls_line(n, s, answer, size);
}

/* Connect within the step (AcceptTimeoutMs); the socket does not block
 * (authd's steps wait with poll, and so does NFC after them). */
static int connect_one(struct nfc_disk *n, const struct addrinfo *a)
{
	int fd = socket(a->ai_family,
			a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			a->ai_protocol);
	int err = 0;
	socklen_t len = sizeof(err);

	if (fd < 0)
		return -1;
	n->fd = fd; /* for link_wait() */
	if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
		if (errno != EINPROGRESS ||
		    link_wait(n, POLLOUT, n->until) < 0)
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
		    err) {
			errno = err ? err : errno;
			goto fail;
		}
	}
	return fd;
fail:
	err = errno;
	close(fd);
	n->fd = -1;
	errno = err;
	return -1;
}

static int connect_tcp(struct nfc_disk *n, const char *host, int port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai, *a;
	char ps[16];
	int fd = -1, one = 1, r;

	snprintf(ps, sizeof(ps), "%d", port);
	r = getaddrinfo(host, ps, &hints, &ai);
	if (r != 0) {
		vmdkfs_error("NFC: %s: %s", host, gai_strerror(r));
		return -EHOSTUNREACH;
	}
	for (a = ai; a && fd < 0; a = a->ai_next)
		if ((fd = connect_one(n, a)) < 0 &&
		    (errno == EINTR || errno == EAGAIN))
			break;
	freeaddrinfo(ai);
	if (fd < 0 && errno == EINTR && sig_stop_requested())
		return sig_stop_error(n->ds_path);
	if (fd < 0) {
		vmdkfs_error("NFC: cannot connect to authd at %s:%d: %s", host,
			     port,
			     errno == EAGAIN ? "no answer within "
					       "vixDiskLib.nfc.AcceptTimeoutMs"
					     : strerror(errno));
		return errno == EAGAIN ? -ETIMEDOUT : -ECONNREFUSED;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	n->fd = fd;
	return 0;
}

/* The timeouts numbered READ and WRITE, for link_move() once authd is
 * done (authd's steps have their own, step_begin()). */
static void set_timeouts(struct nfc_disk *n, int read, int write)
{
	uint32_t r = n->spec.nfc_timeout_ms[read];
	uint32_t w = n->spec.nfc_timeout_ms[write];

	n->rt_key = timeout_key[read];
	n->wt_key = timeout_key[write];
	n->rt_ms = r;
	n->wt_ms = w;
}

/* authd: greeting, TLS, SESSION, BANNER, THUMBPRINT_SHA2, PROXY; then
 * NFC in clear (nbd) or in a second TLS session (nbdssl). */
static int authd(struct nfc_disk *n, const struct vs_ticket *t)
{
	char line[512], sha256[100], cmd[600];
	SSL *first = NULL;
	const char *host = t->host ? t->host : vs_host(n->spec.vs);
	int port = n->spec.nfc_port ? n->spec.nfc_port : t->port;
	size_t len = 0;
	int r;

	/* AcceptTimeoutMs: until authd has greeted us and TLS is up;
	 * RequestTimeoutMs: each later request and its answer.  Each is
	 * the longest the whole step may take, however the host sends. */
	step_begin(n, timeout_key[0], n->spec.nfc_timeout_ms[0]);
	r = connect_tcp(n, host, port);
	if (r < 0)
		return r;
	while (len + 1 < sizeof(line)) { /* the greeting, in clear */
		char c;
		ssize_t k;

		k = recv(n->fd, &c, 1, 0);
		if (k == 1 && c == '\n')
			break;
		if (k == 1) {
			if (c != '\r')
				line[len++] = c;
			continue;
		}
		if (k == 0)
			errno = ECONNRESET;
		if (k < 0 && step_retry(n, NULL, -1))
			continue;
		r = step_failed(n, errno == ECONNRESET
				       ? "authd closed the link before its "
					 "greeting"
				       : "authd sent no greeting",
				-ECONNRESET);
		vmdkfs_error("%s (%s:%d)", vmdkfs_errmsg(), host, port);
		return r;
	}
	line[len] = '\0';
	if (strncmp(line, "220 ", 4) != 0) {
		vmdkfs_error("%s: NFC: unexpected authd greeting \"%.80s\"",
			     n->ds_path, line);
		return -EPROTO;
	}
	r = tls_start(n, t->thumbprint, &first, sha256, sizeof(sha256));
	if (r < 0)
		return r;
	step_begin(n, timeout_key[1], n->spec.nfc_timeout_ms[1]);
	snprintf(cmd, sizeof(cmd), "SESSION %s\r\n", t->session);
	r = tls_say(n, first, cmd);
	explicit_bzero(cmd, sizeof(cmd));
	if (r == 0)
		r = tls_ask(n, first, "BANNER \r\n", line, sizeof(line));
	if (r == 0 && strncmp(line, "220", 3) != 0) {
		vmdkfs_error("%s: NFC: authd refused the ticket: \"%.120s\"",
			     n->ds_path, line);
		r = -EACCES;
	}
	if (r == 0)
		r = tls_ask(n, first, "THUMBPRINT_SHA2 PlainText\r\n", line,
			    sizeof(line));
	if (r == 0 &&
	    (strncmp(line, "200 ", 4) != 0 || !same_thumb(line + 4, sha256))) {
		vmdkfs_error("%s: NFC: authd's SHA-256 thumbprint \"%.120s\" "
			     "does not match its certificate (%s)",
			     n->ds_path, line, sha256);
		r = -EACCES;
	}
	if (r == 0) {
		snprintf(cmd, sizeof(cmd), "PROXY %s%s\r\n", t->service,
			 n->ssl ? "ssl" : "");
		r = tls_ask(n, first, cmd, line, sizeof(line));
	}
	if (r == 0 && strncmp(line, "200 Connect", 11) != 0) {
		vmdkfs_error("%s: NFC: authd's answer to PROXY: \"%.120s\"",
			     n->ds_path, line);
		r = -EPROTO;
	}
	/* The first TLS session is abandoned, without close_notify. */
	SSL_free(first);
	if (r < 0)
		return r;
	if (n->ssl) {
		char sha256b[100];

		step_begin(n, timeout_key[1], n->spec.nfc_timeout_ms[1]);
		r = tls_start(n, t->thumbprint, &n->tls, sha256b,
			      sizeof(sha256b));
		if (r == 0 && strcmp(sha256b, sha256) != 0) {
			vmdkfs_error("%s: NFC: the second TLS session shows "
				     "another certificate",
				     n->ds_path);
			r = -EACCES;
		}
		if (r == 0)
			nfc_log(n, 3, "%s: nbdssl: %s, %s", n->ds_path,
				SSL_get_version(n->tls),
				SSL_get_cipher_name(n->tls));
	}
	return r;
}

/* ---- The NFC handshake (264-byte messages) ---- */

static int msg_send(struct nfc_disk *n, uint32_t type, uint32_t a4, uint32_t a8,
		    const void *extra, size_t extra_at, size_t extra_len)
{
	uint8_t m[MSG_LEN];

	memset(m, 0, sizeof(m));
	put32(m, type);
	put32(m + 4, a4);
	put32(m + 8, a8);
	if (extra && extra_at + extra_len <= sizeof(m))
		memcpy(m + extra_at, extra, extra_len);
	return link_write(n, m, sizeof(m));
}

static int msg_expect(struct nfc_disk *n, uint32_t type, uint8_t *m)
{
	int r = link_read(n, m, MSG_LEN);

	if (r < 0)
		return r;
	if (get32(m) != type) {
		vmdkfs_error("%s: NFC handshake: expected message %u, got %u",
			     n->ds_path, type, get32(m));
		return -EPROTO;
	}
	return 0;
}

/* The classic handshake, in the order VDDK was recorded to use
 * (nfc_open.md, "Handshake order"): 43 "PlainText", 33; the host's 36;
 * 51 (our version); the host's 51; 54 with the client name and the
 * operation as raw bytes after it ("vddk", "nbdmode": VDDK's), 55
 * (features 3), 52; the host's 52. */
static int nfc_handshake(struct nfc_disk *n)
{
	static const char tag[] = "PlainText", names[] = "vddknbdmode";
	uint8_t m[MSG_LEN];
	int r;

	r = msg_send(n, MSG_HANDSHAKE, 0, 0, tag, 4, sizeof(tag) - 1);
	if (r == 0)
		r = msg_send(n, MSG_SESSION_PARAMS, 0, 0, NULL, 0, 0);
	if (r == 0)
		r = msg_expect(n, MSG_SESSION_PARAMS_REPLY, m);
	if (r == 0)
		r = msg_send(n, MSG_VERSION, NFC_VERSION, 0, NULL, 0, 0);
	if (r == 0)
		r = msg_expect(n, MSG_VERSION, m);
	if (r == 0 && get32(m + 4) < NFC_VERSION_MIN) {
		vmdkfs_error("%s: NFC: the host speaks NFC version %u; at "
			     "least %u is needed",
			     n->ds_path, get32(m + 4), NFC_VERSION_MIN);
		return -EPROTONOSUPPORT;
	}
	if (r == 0)
		nfc_log(n, 4, "%s: NFC: host version %u", n->ds_path,
			get32(m + 4));
	if (r == 0)
		r = msg_send(n, MSG_CONNECTION_DATA, 4, 7, NULL, 0, 0);
	if (r == 0)
		r = link_write(n, names, sizeof(names) - 1);
	if (r == 0)
		r = msg_send(n, MSG_SESSION_FEATURES, 3, 0, NULL, 0, 0);
	if (r == 0)
		r = msg_send(n, MSG_AIO_SESSION_OPEN, 0, 0, NULL, 0, 0);
	if (r == 0)
		r = msg_expect(n, MSG_AIO_SESSION_OPEN, m);
	return r;
}

/* ---- AIO messages ---- */

struct aio_msg {
	uint32_t type, size, op;
	uint8_t payload[256];
	uint8_t *extra; /* malloc'd, or NULL */
	uint32_t elen;
};

/* Send one message with opId OP. */
static int aio_send_op(struct nfc_disk *n, uint32_t type, const void *payload,
		       uint32_t plen, const void *extra, uint32_t elen,
		       uint32_t op)
{
	uint8_t h[16];
	int r;

	put32(h, AIO_MAGIC);
	put32(h + 4, type);
	put32(h + 8, plen);
	put32(h + 12, op);
	r = link_write(n, h, sizeof(h));
	if (r == 0 && plen)
		r = link_write(n, payload, plen);
	if (r == 0 && elen)
		r = link_write(n, extra, elen);
	return r;
}

/* Send one message with the link's next opId (from 0, one more per
 * message: nfc_open.md, "AIO framing"); that opId in *OP. */
static int aio_send(struct nfc_disk *n, uint32_t type, const void *payload,
		    uint32_t plen, const void *extra, uint32_t elen,
		    uint32_t *op)
{
	uint32_t o = n->op++;

	if (op)
		*op = o;
	return aio_send_op(n, type, payload, plen, extra, elen, o);
}

/* The host's ERROR record as the thread's message; -errno. */
static int aio_error(struct nfc_disk *n, const struct aio_msg *m)
{
	uint64_t code = get64(m->payload);

	vmdkfs_error("%s: NFC error %llu from the host: %.*s", n->ds_path,
		     (unsigned long long)code, (int)m->elen,
		     m->extra ? (const char *)m->extra : "");
	nfc_log(n, 1, "%s", vmdkfs_errmsg());
	/* The disk locked by another session.  Real hosts were seen to
	 * say "DiskLib error 16392: Failed to lock the file" (their code is
	 * not recorded); 15 is VIX_E_FILE_ALREADY_LOCKED. */
	if (code == 15 ||
	    (m->extra && strcasestr((const char *)m->extra, "lock the file")))
		return -EBUSY;
	return code == 11 ? -EACCES : -EIO;
}

/* Read one message's header and payload; its extra (if any) is left on
 * the link, its length in m->elen, unless it is an ERROR record, which is
 * read whole and returned as -errno.  Only a read reply carries data
 * (its length at [36]); a write's acknowledgement carries none, whatever
 * its [36] says (nfc_write.md: one 44-byte reply, no extra). */
static int aio_recv_head(struct nfc_disk *n, struct aio_msg *m)
{
	uint8_t h[16];
	int r;

	m->extra = NULL;
	m->elen = 0;
	r = link_read(n, h, sizeof(h));
	if (r < 0)
		return r;
	if (get32(h) != AIO_MAGIC) {
		vmdkfs_error("%s: NFC: bad message magic %08x", n->ds_path,
			     get32(h));
		return -EPROTO;
	}
	m->type = get32(h + 4);
	m->size = get32(h + 8);
	m->op = get32(h + 12);
	if (m->size > sizeof(m->payload)) {
		vmdkfs_error("%s: NFC: message of %u bytes is too large",
			     n->ds_path, m->size);
		return -EPROTO;
	}
	memset(m->payload, 0, sizeof(m->payload));
	r = link_read(n, m->payload, m->size);
	if (r < 0)
		return r;
	if (m->type == AIO_ERROR)
		m->elen = get32(m->payload + 12);
	else if (m->type == AIO_IO && (uint32_t)get64(m->payload + 8) == 1)
		m->elen = get32(m->payload + 36);
	if (m->elen > 64u << 20) {
		vmdkfs_error("%s: NFC: extra of %u bytes is impossible",
			     n->ds_path, m->elen);
		return -EPROTO;
	}
	if (m->type == AIO_ERROR) {
		m->extra = malloc(m->elen + 1);
		if (!m->extra)
			return -ENOMEM;
		r = link_read(n, m->extra, m->elen);
		m->extra[m->elen] = 0;
		if (r == 0)
			r = aio_error(n, m);
		free(m->extra);
		m->extra = NULL;
		return r;
	}
	return 0;
}

static int aio_recv(struct nfc_disk *n, struct aio_msg *m)
{
	int r = aio_recv_head(n, m);

	if (r < 0 || !m->elen)
		return r;
	m->extra = malloc(m->elen + 1);
	if (!m->extra)
		return -ENOMEM;
	r = link_read(n, m->extra, m->elen);
	m->extra[m->elen] = 0;
	if (r < 0) {
		free(m->extra);
		m->extra = NULL;
	}
	return r;
}

/* Send a request and take its one reply (of the same type and opId). */
static int aio_call(struct nfc_disk *n, uint32_t type, const void *payload,
		    uint32_t plen, const void *extra, uint32_t elen,
		    struct aio_msg *reply)
{
	uint32_t op;
	int r = aio_send(n, type, payload, plen, extra, elen, &op);

	if (r == 0)
		r = aio_recv(n, reply);
	if (r == 0 && (reply->type != type || reply->op != op)) {
		vmdkfs_error("%s: NFC: reply of type %u (opId %u) to a "
			     "request of type %u (opId %u)",
			     n->ds_path, reply->type, reply->op, type, op);
		free(reply->extra);
		reply->extra = NULL;
		r = -EPROTO;
	}
	return r;
}

/* ---- Connecting and opening ---- */

static void link_close(struct nfc_disk *n)
{
	slots_drop(n);
	if (n->tls)
		SSL_free(n->tls);
	n->tls = NULL;
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
	n->rx_at = n->rx_len = 0; /* never bytes of an old link */
}

static int link_session(struct nfc_disk *n);

/* A new ticket, authd, the NFC handshake, the AIO session, OPEN_FILE. */
static int link_open(struct nfc_disk *n)
{
	struct vs_ticket t;
	int r;

	/* A new link to a snapshot's disk once there was one: the snapshot
	 * must still be there.  Removed (by another client) its link's file
	 * holds other bytes now (the later links consolidated into it), and
	 * the host would serve them without a word. */
	if (n->d.size && n->snapshot) {
		r = vs_snapshot_exists(n->spec.vs, n->snapshot);
		if (r == 0) {
			vmdkfs_error("%s: NFC: snapshot %s is gone (removed by "
				     "another client?): its disk can no longer "
				     "be read",
				     n->ds_path, n->snapshot);
			return -ENOENT;
		}
		if (r < 0)
			return r;
	}
	r = vs_nfc_ticket(n->spec.vs, n->vm, n->spec.disk_key,
			  !n->spec.readonly, &t);
	if (r < 0)
		return r;
	r = authd(n, &t);
	vs_ticket_free(&t);
	if (r == 0)
		r = link_session(n);
	if (r < 0)
		link_close(n);
	return r;
}

/* On a link through authd: the NFC handshake, the AIO session, OPEN_FILE
 * (tests/fuzz/nfc-fuzz.c starts here, the host's side its input). */
static int link_session(struct nfc_disk *n)
{
	struct aio_msg m;
	uint8_t p[60];
	int r;

	/* From here on timeouts are kept by link_move() (the socket never
	 * blocks: connect_one()), and SSL_get_error() wants an empty error
	 * queue. */
	ERR_clear_error();
	set_timeouts(n, 1, 1); /* the handshake's requests */
	if (n->tls)
		SSL_set_mode(n->tls, SSL_MODE_ENABLE_PARTIAL_WRITE |
					 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	r = nfc_handshake(n);
	if (r < 0)
		return r;
	/* ReadTimeoutMs and WriteTimeoutMs for the data; a read-write
	 * open uses nfcFssrvrWrite.TimeoutMs for writes when it is set. */
	set_timeouts(n, 2,
		     !n->spec.readonly && n->spec.nfc_timeout_ms[5] ? 5 : 3);
	/* The AIO session as VDDK opens it (nfc_open.md, "OPEN_SESSION /
	 * sockopts / resource pool"): OPEN_SESSION of 16 bytes, [4] the
	 * buffer size in bytes, [8] the buffer count; SET_SOCK_OPTS of 12
	 * zero bytes (the host answers with its socket buffer sizes);
	 * SET_RES_POOL 1. */
	n->op = 0;
	memset(p, 0, sizeof(p));
	put32(p + 4, n->bufsize);
	put32(p + 8, n->nslots);
	r = aio_call(n, AIO_OPEN_SESSION, p, 16, NULL, 0, &m);
	if (r == 0) {
		free(m.extra);
		memset(p, 0, sizeof(p));
		r = aio_call(n, AIO_SET_SOCK_OPTS, p, 12, NULL, 0, &m);
	}
	if (r == 0) {
		free(m.extra);
		nfc_log(n, 4, "%s: NFC: host socket buffers %u, %u, flag %u",
			n->ds_path, get32(m.payload), get32(m.payload + 4),
			get32(m.payload + 8));
		put32(p, 1);
		r = aio_call(n, AIO_SET_RES_POOL, p, 4, NULL, 0, &m);
	}
	if (r < 0)
		return r;
	free(m.extra);
	memset(p, 0, sizeof(p));
	put32(p, (uint32_t)strlen(n->ds_path));
	put32(p + 16, 2); /* a disk */
	put32(p + 20, n->spec.readonly ? 0x1e : 0x1a);
	r = aio_call(n, AIO_OPEN_FILE, p, 60, n->ds_path,
		     (uint32_t)strlen(n->ds_path), &m);
	if (r < 0)
		return r;
	free(m.extra);
	if (get64(m.payload) != 0) {
		vmdkfs_error("%s: NFC: OPEN_FILE status %llu", n->ds_path,
			     (unsigned long long)get64(m.payload));
		return -EIO;
	}
	n->handle = get64(m.payload + 8);
	if (!n->d.size) {
		n->d.size = get64(m.payload + 28);
		if (get32(m.payload + 36) && get32(m.payload + 36) != 512) {
			vmdkfs_error("%s: NFC: sector size %u not supported",
				     n->ds_path, get32(m.payload + 36));
			return -EOPNOTSUPP;
		}
	} else if (get64(m.payload + 28) != n->d.size) {
		vmdkfs_error("%s: NFC: the disk's size changed on reconnect",
			     n->ds_path);
		return -EIO;
	}
	nfc_log(n, 3, "%s: NFC %s: opened, %llu bytes", n->ds_path,
		n->ssl ? "nbdssl" : "nbd", (unsigned long long)n->d.size);
	return 0;
}

/* ---- Reading and writing ---- */

/* A read request's 44-byte payload (nfc_read.md, "Request"): [0] the
 * handle, [8] direction 1 (compression 0: none), [16] the offset, [24]
 * the length as a u64 and again at [32] and [36] as u32s, [40] 0. */
static void read_payload(uint8_t *p, uint64_t handle, uint64_t off,
			 uint32_t len)
{
	memset(p, 0, 44);
	put64(p, handle);
	put64(p + 8, 1);
	put64(p + 16, off);
	put64(p + 24, len);
	put32(p + 32, len);
	put32(p + 36, len);
}

/* The request in flight that covers byte POS, or NULL. */
static struct nfc_slot *slot_at(struct nfc_disk *n, uint64_t pos)
{
	uint32_t i;

	for (i = 0; i < n->nslots; i++)
		if (n->slots[i].used && n->slots[i].off <= pos &&
		    pos < n->slots[i].off + n->slots[i].len)
			return &n->slots[i];
	return NULL;
}

/* Where the first request in flight after byte POS starts, if that is
 * before LIMIT; else LIMIT. */
static uint64_t slot_next(struct nfc_disk *n, uint64_t pos, uint64_t limit)
{
	uint32_t i;

	for (i = 0; i < n->nslots; i++)
		if (n->slots[i].used && n->slots[i].off > pos &&
		    n->slots[i].off < limit)
			limit = n->slots[i].off;
	return limit;
}

/* A free slot, or NULL. */
static struct nfc_slot *slot_unused(struct nfc_disk *n)
{
	uint32_t i;

	for (i = 0; i < n->nslots; i++)
		if (!n->slots[i].used)
			return &n->slots[i];
	return NULL;
}

/* Send a read of [OFF, OFF + LEN) into a free slot. */
static int slot_request(struct nfc_disk *n, uint64_t off, uint64_t len)
{
	struct nfc_slot *sl = slot_unused(n);
	uint8_t p[44];

	if (!sl)
		return -EBUSY;
	if (!sl->buf && !(sl->buf = malloc(n->max_io)))
		return -ENOMEM;
	read_payload(p, n->handle, off, (uint32_t)len);
	sl->used = true;
	sl->seq = ++n->seq;
	sl->off = off;
	sl->len = sl->left = len;
	sl->dst = sl->buf;
	memset(sl->seen, 0, sizeof(sl->seen));
	return aio_send(n, AIO_IO, p, 44, NULL, 0, NULL);
}

/* Take one read-reply fragment off the link and place it in its slot.
 * Every sector must arrive exactly once and inside its request: anything
 * else fails (the caller drops the link), so a confused host can never
 * give wrong bytes. */
static int slot_receive(struct nfc_disk *n)
{
	struct nfc_slot *sl = NULL;
	struct aio_msg m;
	uint64_t req, s;
	uint32_t frag, i;
	bool bad;
	int r;

	r = aio_recv_head(n, &m);
	if (r < 0)
		return r;
	req = get64(m.payload + 16);
	frag = get32(m.payload + 28);
	for (i = 0; i < n->nslots && !sl; i++)
		if (n->slots[i].used && n->slots[i].off == req &&
		    n->slots[i].left)
			sl = &n->slots[i];
	/* Uncompressed data, as asked for: [8] exactly 1, [32] = [36]. */
	bad = !sl || m.type != AIO_IO || get64(m.payload) != 0 ||
	      get64(m.payload + 8) != 1 || get32(m.payload + 32) != m.elen ||
	      m.elen == 0 || frag % 512 || frag + (uint64_t)m.elen > sl->len ||
	      (m.elen % 512 && frag + m.elen != sl->len);
	for (s = frag / 512; !bad && s * 512 < frag + (uint64_t)m.elen; s++)
		bad = sl->seen[s / 8] & (1u << (s % 8));
	if (bad) {
		vmdkfs_error("%s: NFC: bad read reply (type %u, status %llu, "
			     "offset %llu + %u, %u bytes)",
			     n->ds_path, m.type,
			     (unsigned long long)get64(m.payload),
			     (unsigned long long)req, frag, m.elen);
		return -EPROTO;
	}
	/* The data goes straight into its place. */
	r = link_read(n, sl->dst + frag, m.elen);
	if (r < 0)
		return r;
	for (s = frag / 512; s * 512 < frag + (uint64_t)m.elen; s++)
		sl->seen[s / 8] |= (uint8_t)(1u << (s % 8));
	sl->left -= m.elen;
	return 0;
}

/* Forget every slot (the link is being closed, or was). */
static void slots_drop(struct nfc_disk *n)
{
	uint32_t i;

	for (i = 0; i < n->nslots; i++)
		n->slots[i].used = false;
}

/* Receive until no request is in flight, then forget the slots. */
static int slots_drain(struct nfc_disk *n)
{
	uint32_t i;
	int r = 0;

	for (i = 0; i < n->nslots && r == 0; i++)
		while (r == 0 && n->slots[i].used && n->slots[i].left)
			r = slot_receive(n);
	slots_drop(n);
	return r;
}

/* Ask for the bytes from FROM on that no request in flight covers, into
 * the free slots.  With AREAS (the reader reads inside the areas of data
 * that a wrapper knows of, d.ahead_data), only bytes in those areas, from
 * one area on to the next, so that a backup reading the changed areas one
 * after the other finds the next one on its way; else every byte, holes
 * too, as a reader that reads them (dd) wants. */
static int ahead_fill(struct nfc_disk *n, uint64_t from, bool areas)
{
	uint64_t limit = n->d.size, p = from;
	int r = 0;

	while (r == 0 && p < limit) {
		uint64_t s = p, e = limit, l;
		struct nfc_slot *in;

		if (areas) {
			if (!n->d.ahead_data(n->d.ahead_arg, p, &s, &e))
				break;
			if (s < p)
				s = p;
			if (e > limit)
				e = limit;
			if (s >= e)
				break;
		}
		if ((in = slot_at(n, s))) { /* in flight already */
			p = in->off + in->len;
			continue;
		}
		if (!slot_unused(n))
			break;
		l = e - s < n->max_io ? e - s : n->max_io;
		l = slot_next(n, s, s + l) - s;
		r = slot_request(n, s, l);
		p = s + l;
	}
	return r;
}

/* Make a slot free: receive the oldest request whole and forget it (its
 * bytes are read again if asked for). */
static int slot_free_one(struct nfc_disk *n)
{
	struct nfc_slot *old = NULL;
	uint32_t i;
	int r = 0;

	for (i = 0; i < n->nslots; i++)
		if (n->slots[i].used && (!old || n->slots[i].seq < old->seq))
			old = &n->slots[i];
	if (!old)
		return 0;
	while (r == 0 && old->left)
		r = slot_receive(n);
	old->used = false;
	return r;
}

/* Ask for the bytes of [OFF, END) that no request in flight covers, as
 * far as free slots go; at least the first of them (freeing a slot for
 * it if need be).  Requests in flight stay: their replies come first and
 * wait in their slots for the reader. */
static int request_range(struct nfc_disk *n, uint64_t off, uint64_t end)
{
	bool first = true;
	int r = 0;

	while (r == 0 && off < end) {
		uint64_t stop = end - off < n->max_io ? end : off + n->max_io;
		struct nfc_slot *cover = slot_at(n, off);

		if (cover) {
			off = cover->off + cover->len;
			continue;
		}
		if (!slot_unused(n)) {
			if (!first)
				break;
			r = slot_free_one(n);
			continue;
		}
		stop = slot_next(n, off, stop);
		r = slot_request(n, off, stop - off);
		first = false;
		off = stop;
	}
	return r;
}

/* Read LEN bytes at OFF into BUF.  A sequential stream keeps up to
 * BufCount requests of NFC_MAX_IO in flight ahead of the reader, across
 * calls; so does a read that starts an area of data a wrapper knows of
 * (areas.c: a backup reading the changed areas reads each whole, one
 * after the other), from its first request on.  The read-ahead follows
 * the areas, unless the stream has gone more than HOLE_RUN into a hole:
 * that reader reads every byte (dd), and so does the read-ahead.  Any
 * other read waits for what is in flight, then asks for just what it
 * needs (all of its requests at once).  Called with n->lock held. */
static int read_once(struct nfc_disk *n, char *buf, uint64_t off, uint64_t len)
{
	bool stream = off == n->last_end && off != 0, areas = false;
	uint64_t end = off + len, s, e;
	int r = 0;

	n->nreads++;
	n->nreads_ahead += slot_at(n, off) != NULL;
	if (n->d.ahead_data && n->d.ahead_data(n->d.ahead_arg, off, &s, &e) &&
	    s <= off) { /* in an area */
		stream = stream || (s == off && e > end);
		n->hole_at = NO_HOLE;
		areas = true;
	} else if (n->d.ahead_data) {
		if (!stream || n->hole_at == NO_HOLE)
			n->hole_at = off;
		areas = end - n->hole_at <= HOLE_RUN;
	}
	while (off < end && r == 0) {
		struct nfc_slot *sl = slot_at(n, off);
		uint64_t l;

		if (!sl) {
			/* Not in flight: ask for it (and, on a stream, for
			 * what follows) before waiting. */
			r = request_range(n, off, end);
			if (r == 0 && stream)
				r = ahead_fill(n, end, areas);
			continue;
		}
		/* A request the reader wants whole, none of it here yet:
		 * its fragments go straight into the reader's buffer. */
		if (sl->off == off && sl->len <= end - off &&
		    sl->left == sl->len)
			sl->dst = buf;
		while (r == 0 && sl->left)
			r = slot_receive(n);
		if (r < 0)
			break;
		l = sl->off + sl->len - off;
		if (l > end - off)
			l = end - off;
		if (sl->dst != buf)
			memcpy(buf, sl->buf + (off - sl->off), l);
		buf += l;
		off += l;
		if (off == sl->off + sl->len)
			sl->used = false; /* all of it read */
		/* Keep the stream's requests in flight while it is read. */
		if (stream && r == 0)
			r = ahead_fill(n, end, areas);
	}
	if (r < 0)
		return r;
	n->last_end = end;
	return stream ? ahead_fill(n, end, areas) : 0;
}

/* Write LEN bytes: each request of at most NFC_MAX_IO goes as fragments
 * of at most the session buffer, laid out like read replies and sharing
 * one opId (nfc_write.md, "Request"): [8] direction 0, [16] the request's
 * offset, [24] its length, [28] the fragment's offset in it, [32] the
 * fragment's length, [36] the wire length of the data that follows.  One
 * 44-byte acknowledgement each, with no data after it ([36] is not read).
 * Called with n->lock held. */
static int write_once(struct nfc_disk *n, const char *buf, uint64_t off,
		      uint64_t len)
{
	uint64_t done = 0;
	int r;

	/* Reads ahead would hold the old bytes: finish and forget them. */
	r = slots_drain(n);
	n->last_end = 0;
	while (done < len && r == 0) {
		uint64_t l = len - done < n->max_io ? len - done : n->max_io;
		uint32_t op = n->op++;
		uint64_t f = 0;
		struct aio_msg m;

		while (r == 0 && f < l) {
			uint32_t fl =
			    (uint32_t)(l - f < n->bufsize ? l - f : n->bufsize);
			uint8_t p[44];

			memset(p, 0, sizeof(p));
			put64(p, n->handle);
			put64(p + 16, off + done);
			put32(p + 24, (uint32_t)l);
			put32(p + 28, (uint32_t)f);
			put32(p + 32, fl);
			put32(p + 36, fl);
			r = aio_send_op(n, AIO_IO, p, 44, buf + done + f, fl,
					op);
			f += fl;
		}
		if (r == 0)
			r = aio_recv_head(n, &m);
		if (r == 0 && (m.type != AIO_IO || m.op != op)) {
			vmdkfs_error("%s: NFC: a message of type %u (opId %u) "
				     "where the acknowledgement of the write "
				     "at %llu (opId %u) was due",
				     n->ds_path, m.type, m.op,
				     (unsigned long long)(off + done), op);
			r = -EPROTO;
		} else if (r == 0 && get64(m.payload) != 0) {
			vmdkfs_error("%s: NFC: write at %llu not acknowledged "
				     "(status %llu)",
				     n->ds_path, (unsigned long long)(off + done),
				     (unsigned long long)get64(m.payload));
			r = -EIO;
		}
		done += l;
	}
	return r;
}

/* Before the next reconnect when the host said the disk is locked
 * (attempt I): the lock is most often our own broken session's, which the
 * host drops only once it notices the link is gone (a stalled session, a
 * write it was still taking in).  1 s before the second reconnect, 2 s
 * before the third: 3 s in all (none in the fuzzer). */
static void lock_pause(struct nfc_disk *n, int i)
{
	nfc_log(n, 2, "%s: NFC: the disk is locked; trying again in %d ms",
		n->ds_path, 500 << i);
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	usleep(500000u << i);
#endif
}

static bool retryable(int r)
{
	return r == -EPIPE || r == -ECONNRESET || r == -ETIMEDOUT ||
	       r == -EPROTO;
}

/* Run one exchange; on a broken link reconnect (new ticket) and retry. */
static int with_retries(struct nfc_disk *n, bool read, char *buf, uint64_t off,
			uint64_t len)
{
	int r = -EIO, attempt;
	char first[512] = ""; /* why the first try failed */

	pthread_mutex_lock(&n->lock);
	/* SSL_get_error() needs an empty error queue before each call: once
	 * here per exchange (link_io() clears it after a failure). */
	ERR_clear_error();
	/* nfcFssrvr.TimeoutMs: the host drops a file session idle longer
	 * than that; start a new one rather than find it dead. */
	if (n->fd >= 0 && n->spec.nfc_timeout_ms[4] &&
	    (uint64_t)(time(NULL) - n->last_use) * 1000 >=
		n->spec.nfc_timeout_ms[4]) {
		nfc_log(n, 3,
			"%s: NFC: idle for longer than "
			"nfcFssrvr.TimeoutMs; reconnecting",
			n->ds_path);
		link_close(n);
	}
	for (attempt = 0; attempt <= NFC_RETRIES; attempt++) {
		if (n->fd < 0) {
			r = link_open(n);
			if (r < 0) {
				if (!first[0])
					snprintf(first, sizeof(first), "%s",
						 vmdkfs_errmsg());
				nfc_log(n, 2, "%s: NFC reconnect %d failed: %s",
					n->ds_path, attempt, vmdkfs_errmsg());
				if (r == -EBUSY && attempt < NFC_RETRIES)
					lock_pause(n, attempt);
				continue;
			}
		}
		r = read ? read_once(n, buf, off, len)
			 : write_once(n, buf, off, len);
		n->last_use = time(NULL);
		if (r == 0)
			break;
		/* Replies to the other requests in flight may still come: a
		 * link that failed is never reused. */
		link_close(n);
		if (!first[0])
			snprintf(first, sizeof(first), "%s", vmdkfs_errmsg());
		if (!retryable(r))
			break;
		nfc_log(n, 2, "%s: NFC %s at %llu failed (%s); reconnecting",
			n->ds_path, read ? "read" : "write",
			(unsigned long long)off, vmdkfs_errmsg());
	}
	pthread_mutex_unlock(&n->lock);
	/* The first failure is often the cause of the later ones (a stalled
	 * session still holding the disk's lock): say both. */
	if (r < 0 && attempt > 0 && strcmp(first, vmdkfs_errmsg()) != 0)
		vmdkfs_error("%s (after: %s)", vmdkfs_errmsg(), first);
	if (r < 0)
		nfc_log(n, 1, "%s: NFC %s at %llu: giving up: %s", n->ds_path,
			read ? "read" : "write", (unsigned long long)off,
			vmdkfs_errmsg());
	return r < 0 ? (r == -EACCES || r == -ENOMEM ? r : -EIO) : 0;
}

static int nfc_pread(struct disk *d, void *buf, uint64_t sector, uint64_t count)
{
	return with_retries((struct nfc_disk *)d, true, buf, sector * 512,
			    count * 512);
}

static int nfc_pwrite(struct disk *d, const void *buf, uint64_t sector,
		      uint64_t count)
{
	return with_retries((struct nfc_disk *)d, false, (char *)buf,
			    sector * 512, count * 512);
}

static int nfc_flush(struct disk *d)
{
	(void)d; /* each write is acknowledged by the host */
	return 0;
}

/* The close VDDK was recorded to send (nfc_open.md, "Close"): CLOSE_FILE,
 * CLOSE_SESSION, then the classic type 4 (session complete).  The reads
 * still in flight (read ahead) are answered first and their bytes
 * dropped, so that the next reply on the link is CLOSE_FILE's. */
static void nfc_close(struct disk *d)
{
	struct nfc_disk *n = (struct nfc_disk *)d;
	struct aio_msg m;
	uint8_t p[16];
	int r;

	nfc_log(n, 3, "%s: NFC: %llu reads, %llu of them read ahead",
		n->ds_path, (unsigned long long)n->nreads,
		(unsigned long long)n->nreads_ahead);
	if (n->fd < 0)
		goto out;
	/* An unmount must end (and the temporary snapshot go): the close
	 * waits CLOSE_WAIT_MS at most for each answer (less where a shorter
	 * timeout is set), then the link is dropped.  Every write was
	 * acknowledged before: nothing is lost. */
	if (!n->rt_ms || n->rt_ms > CLOSE_WAIT_MS)
		n->rt_ms = CLOSE_WAIT_MS;
	if (!n->wt_ms || n->wt_ms > CLOSE_WAIT_MS)
		n->wt_ms = CLOSE_WAIT_MS;
	r = slots_drain(n);
	memset(p, 0, sizeof(p));
	put64(p, n->handle);
	/* CHOICE: CLOSE_FILE with 8 bytes and CLOSE_SESSION with 4, as
	 * recorded of VDDK, unless -o nfc_close_file= / nfc_close_session=
	 * ask for another host's spelling (vectura: 16 and 16). */
	if (r == 0)
		r = aio_call(n, AIO_CLOSE_FILE, p, n->close_file, NULL, 0, &m);
	/* The session only on a link that still answers. */
	if (r == 0) {
		free(m.extra);
		memset(p, 0, sizeof(p));
		r = aio_call(n, AIO_CLOSE_SESSION, p, n->close_session, NULL,
			     0, &m);
	}
	if (r == 0) {
		free(m.extra);
		r = msg_send(n, MSG_SESSION_COMPLETE, 0, 0, NULL, 0, 0);
	}
	if (r < 0)
		nfc_log(n, 2, "%s: NFC close: %s", n->ds_path,
			vmdkfs_errmsg());
	else
		nfc_log(n, 4, "%s: NFC: closed", n->ds_path);
out:
	nfc_free(n);
}

/* Close the link, if any, and free N. */
static void nfc_free(struct nfc_disk *n)
{
	link_close(n);
	SSL_CTX_free(n->ctx);
	pthread_mutex_destroy(&n->lock);
	slots_free(n);
	free(n->rx);
	free(n->vm);
	free(n->snapshot);
	free(n->ds_path);
	free(n->d.path);
	free(n);
}

static void slots_free(struct nfc_disk *n)
{
	uint32_t i;

	for (i = 0; n->slots && i < n->nslots; i++)
		free(n->slots[i].buf);
	free(n->slots);
	n->slots = NULL;
}

static const struct disk_ops nfc_ops = {
    .pread = nfc_pread,
    .pwrite = nfc_pwrite,
    .flush = nfc_flush,
    .close = nfc_close,
};

/* A disk of SPEC with no link yet; NULL with the error in *R. */
static struct nfc_disk *nfc_new(const struct disk_spec *spec, bool ssl, int *r)
{
	struct nfc_disk *n = calloc(1, sizeof(*n));

	*r = -ENOMEM;
	if (!n)
		return NULL;
	if (spec->nfc_max_io > NFC_MAX_IO_LIMIT || spec->nfc_max_io % 512) {
		vmdkfs_error("nfc_max_io=%u: a multiple of 512 up to %u",
			     spec->nfc_max_io, NFC_MAX_IO_LIMIT);
		free(n);
		*r = -EINVAL;
		return NULL;
	}
	n->close_file = spec->nfc_close_file ? (uint32_t)spec->nfc_close_file
					     : 8;
	n->close_session =
	    spec->nfc_close_session ? (uint32_t)spec->nfc_close_session : 4;
	if ((n->close_file != 8 && n->close_file != 16) ||
	    (n->close_session != 4 && n->close_session != 16)) {
		vmdkfs_error("nfc_close_file=%u, nfc_close_session=%u: the "
			     "payloads are 8 or 16 and 4 or 16 bytes",
			     n->close_file, n->close_session);
		free(n);
		*r = -EINVAL;
		return NULL;
	}
	n->spec = *spec;
	n->ssl = ssl;
	n->fd = -1;
	n->vm = strdup(spec->vm);
	n->snapshot = spec->snapshot ? strdup(spec->snapshot) : NULL;
	n->ds_path = strdup(spec->ds_path);
	n->bufsize = spec->nfc_buf_size ? spec->nfc_buf_size : 65536;
	n->max_io = spec->nfc_max_io ? spec->nfc_max_io : NFC_MAX_IO;
	n->ctx = SSL_CTX_new(TLS_client_method());
	n->nslots = spec->nfc_buf_count ? spec->nfc_buf_count : 4;
	n->hole_at = NO_HOLE;
	n->slots = calloc(n->nslots, sizeof(*n->slots));
	n->rx = malloc(RX_SIZE);
	pthread_mutex_init(&n->lock, NULL);
	if (!n->vm || !n->ds_path || !n->ctx || !n->slots || !n->rx) {
		nfc_free(n);
		return NULL;
	}
	/* Identity is checked by thumbprint against the ticket. */
	SSL_CTX_set_verify(n->ctx, SSL_VERIFY_NONE, NULL);
	/* nbdssl: take whole socket buffers, not a record at a time (two
	 * system calls per 16 KiB record otherwise). */
	SSL_CTX_set_read_ahead(n->ctx, 1);
	SSL_CTX_set_default_read_buffer_len(n->ctx, 256u << 10);
	n->d.ops = &nfc_ops;
	n->d.transport = ssl ? "nbdssl" : "nbd";
	n->d.sector_size = 512;
	n->d.mem_align = 1;
	n->d.max_io = n->max_io;
	n->d.readonly = spec->readonly;
	*r = 0;
	return n;
}

static int nfc_open(const struct disk_spec *spec, bool ssl, struct disk **out)
{
	int r;
	struct nfc_disk *n = nfc_new(spec, ssl, &r);

	if (!n)
		return r;
	r = link_open(n);
	/* A link that broke while it was made (a host or a relay that
	 * closed it, garbage on it) is made again with a new ticket, as a
	 * read would; one that timed out is not, so that a silent host
	 * costs the timeout once. */
	for (int i = 0; r < 0 && r != -ETIMEDOUT && retryable(r) &&
			i < NFC_RETRIES && !sig_stop_requested();
	     i++) {
		nfc_log(n, 2, "%s: NFC: opening failed (%s); again with a new "
			      "ticket",
			n->ds_path, vmdkfs_errmsg());
		usleep(100000u << i);
		r = link_open(n);
	}
	if (r == 0 && !(n->d.path = strdup(spec->ds_path)))
		r = -ENOMEM;
	if (r < 0) {
		nfc_free(n);
		return r;
	}
	*out = &n->d;
	return 0;
}

static bool nfc_available(const struct disk_spec *spec, char *why, size_t size)
{
	if (spec->vs && spec->vm && spec->ds_path && spec->disk_key >= 0)
		return true;
	snprintf(why, size, "needs a vSphere mount (server=, vm=)");
	return false;
}

static int nbd_open(const struct disk_spec *spec, struct disk **out)
{
	return nfc_open(spec, false, out);
}

static int nbdssl_open(const struct disk_spec *spec, struct disk **out)
{
	return nfc_open(spec, true, out);
}

const struct transport nbd_transport = {
    .name = "nbd",
    .available = nfc_available,
    .open_disk = nbd_open,
};

const struct transport nbdssl_transport = {
    .name = "nbdssl",
    .available = nfc_available,
    .open_disk = nbdssl_open,
};
