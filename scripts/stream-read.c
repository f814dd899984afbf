/* stream-read: the plain TCP and TLS readers of `make bench`
 * (scripts/bench-nfc.sh, bench-nfc4.sh).  It connects to the lab's plain
 * stream (vmdkfs-lab -stream, tests/lab/stream.go) and reads BYTES into
 * one reused 1 MiB buffer, as the kernel's reader of a FUSE file would be
 * fed.  Under TLS it sets up OpenSSL exactly as vmdkfs's nbdssl does
 * (transports/nfc.c, nfc_open): TLS_client_method, read-ahead on, a
 * 256 KiB read buffer; so it negotiates the same cipher suite with the
 * same server and receives the same records.  Not a test and not
 * installed.
 *
 * usage: stream-read tcp|tls PORT BYTES
 * prints: MB/s (10^6 bytes per second of wall time from connect to the
 * last byte), the CPU seconds this process used (user + system,
 * getrusage), the cipher suite (TLS) or "tcp", and the times of the
 * connect and of the last byte (seconds since the epoch), so that
 * streams run at once can be summed over their common wall time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	unsigned long long want, got = 0;
	SSL_CTX *ctx = NULL;
	SSL *tls = NULL;
	double t0, t1, c0;
	char *buf;
	int fd, one = 1;

	if (argc != 4 || (strcmp(argv[1], "tcp") && strcmp(argv[1], "tls"))) {
		fprintf(stderr, "usage: stream-read tcp|tls PORT BYTES\n");
		return 2;
	}
	want = strtoull(argv[3], NULL, 10);
	sa.sin_port = htons((unsigned short)atoi(argv[2]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	buf = malloc(1u << 20);
	if (!buf)
		return 1;
	t0 = now();
	c0 = cpu();
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("stream-read: connect");
		return 1;
	}
	/* as nfc.c's link_open */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (argv[1][1] == 'l') {
		ctx = SSL_CTX_new(TLS_client_method());
		if (!ctx)
			return 1;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_read_ahead(ctx, 1);
		SSL_CTX_set_default_read_buffer_len(ctx, 256u << 10);
		tls = SSL_new(ctx);
		if (!tls || !SSL_set_fd(tls, fd) || SSL_connect(tls) != 1) {
			ERR_print_errors_fp(stderr);
			return 1;
		}
	}
	while (got < want) {
		size_t n = want - got < (1u << 20) ? (size_t)(want - got)
						   : (1u << 20);
		ssize_t k;

		if (tls) {
			int r = SSL_read(tls, buf, (int)n);

			k = r > 0 ? r : -1;
		} else {
			k = read(fd, buf, n);
		}
		if (k <= 0)
			break;
		got += (unsigned long long)k;
	}
	if (got != want) {
		fprintf(stderr, "stream-read: got %llu of %llu bytes\n", got,
			want);
		return 1;
	}
	t1 = now();
	printf("%.0f %.3f %s %.6f %.6f\n", (double)got / (t1 - t0) / 1e6,
	       cpu() - c0, tls ? SSL_get_cipher_name(tls) : "tcp", t0, t1);
	if (tls) {
		SSL_shutdown(tls);
		SSL_free(tls);
		SSL_CTX_free(ctx);
	}
	close(fd);
	free(buf);
	return 0;
}
