/* libFuzzer target: the NFC replies vmdkfs parses (transports/nfc.c), with
 * no network and no authd.  The input's first bytes say how the disk is
 * opened and what is asked of it; the rest is the host's side of the link,
 * given whole to one end of a socketpair before the session starts (then
 * the end of the stream, as a host that closes the link).  The client
 * goes through the classic handshake, the AIO session and OPEN_FILE
 * (link_session), then reads and writes (read_once, write_once: the
 * reply fragments placed by their offsets, read-ahead slots, the write
 * acknowledgements), then the close.  Every read's bytes come from the
 * host's stream, so their contents are not checked here (that is
 * tests/test-nfc*.sh's work against the lab); what is checked is that no
 * input crashes, trips a sanitizer, or leaves a read that succeeded with a
 * sector it never received (the buffer is poisoned before each read, and
 * every sector of a successful read must have come from the stream: see
 * seen_all()).
 *
 * nfc.c is included whole, so its statics are reachable. */
#include "../../transports/nfc.c"

#include <sys/socket.h>

/* The input's header: 8 bytes, then up to 8 operations of 4 bytes. */
#define OPS_MAX 8

struct op {
	uint8_t kind;  /* bit 0: write; bit 1: as a stream (reads) */
	uint8_t start; /* in units of 4 KiB */
	uint16_t len;  /* in sectors, 1.. */
};

/* An offset into the stream the sector came from would be ideal; the
 * weaker check that is possible from outside: a read that succeeded left
 * no byte of the poison pattern where the host sent none.  The stream's
 * bytes may of course hold the pattern, so it is a 16-byte marker per
 * sector, and the input is scanned for it: if the marker is in the
 * input, the check is skipped. */
static const char marker[16] = "\xde\xad\xbe\xefNFC-UNREAD\xfe\xed";

static bool has_marker(const uint8_t *p, size_t n)
{
	return memmem(p, n, marker, sizeof(marker)) != NULL;
}

static void poison(char *buf, size_t len)
{
	for (size_t i = 0; i + 512 <= len; i += 512)
		memcpy(buf + i, marker, sizeof(marker));
}

static bool unread_left(const char *buf, size_t len)
{
	for (size_t i = 0; i + 512 <= len; i += 512)
		if (!memcmp(buf + i, marker, sizeof(marker)))
			return true;
	return false;
}

/* Empty what the client sent (the host never reads it), so its sends
 * never fill the socket. */
static void drain(int fd)
{
	char sink[65536];

	while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[1u << 20];
	struct disk_spec spec;
	struct op ops[OPS_MAX];
	struct nfc_disk *n;
	size_t nops, i;
	int sv[2], r, big = 1 << 20;
	bool check;

	if (size < 8)
		return 0;
	memset(&spec, 0, sizeof(spec));
	spec.vm = "vm-20";
	spec.ds_path = "[LocalDS_0] VM0/disk.vmdk";
	spec.disk_key = 2000;
	spec.readonly = !(data[0] & 1);
	spec.nfc_buf_count = 1 + data[1] % 8;
	spec.nfc_max_io = 512u * (1 + data[2] % 128); /* up to 64 KiB */
	spec.nfc_buf_size = 512u * (1 + data[3] % 64);
	spec.nfc_close_file = data[0] & 2 ? 16 : 8;
	spec.nfc_close_session = data[0] & 4 ? 16 : 4;
	for (i = 0; i < 6; i++)
		spec.nfc_timeout_ms[i] = 2000;
	nops = data[4] % (OPS_MAX + 1);
	data += 8, size -= 8;
	if (size < nops * 4)
		return 0;
	for (i = 0; i < nops; i++, data += 4, size -= 4) {
		ops[i].kind = data[0];
		ops[i].start = data[1];
		ops[i].len = (uint16_t)(1 + (data[2] | data[3] << 8) % 2048);
	}
	check = !has_marker(data, size);

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (size && send(sv[1], data, size, 0) != (ssize_t)size)
		abort(); /* -max_len keeps the input inside the buffer */
	shutdown(sv[1], SHUT_WR);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);

	n = nfc_new(&spec, false, &r);
	if (!n)
		abort();
	n->fd = sv[0];
	r = link_session(n);
	for (i = 0; r == 0 && i < nops; i++) {
		uint64_t off = (uint64_t)ops[i].start * 4096;
		uint64_t len = (uint64_t)ops[i].len * 512;

		if (off >= n->d.size)
			break;
		if (len > n->d.size - off)
			len = (n->d.size - off) / 512 * 512;
		if (!len)
			break;
		if (ops[i].kind & 2)
			n->last_end = off; /* a stream: the read-ahead too */
		if (ops[i].kind & 1) {
			if (len > 65536) /* never more than the socket holds */
				len = 65536;
			memset(buf, 0x5a, len);
			r = write_once(n, buf, off, len);
		} else {
			poison(buf, len);
			r = read_once(n, buf, off, len);
			if (r == 0 && check && unread_left(buf, len))
				abort(); /* success with bytes never sent */
		}
		drain(sv[1]);
	}
	/* NFC_FUZZ_VERBOSE=1: how far an input went (seeds are checked with
	 * it: tests/test-fuzz.sh). */
	if (getenv("NFC_FUZZ_VERBOSE"))
		fprintf(stderr, "nfc-fuzz: %zu of %zu operations, %s\n", i,
			nops, r < 0 ? vmdkfs_errmsg() : "no error");
	if (r < 0)
		link_close(n);
	nfc_close(&n->d);
	close(sv[1]);
	return 0;
}
