/* vmdkfs: mount VMware virtual disks as flat files.  This file parses the
 * command line and opens the disks; fs/tree.c serves them. */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 32
#include <errno.h>
#include <fuse.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/err.h"
#include "../common/progress.h"
#include "../common/sig.h"
#include "../transports/transport.h"
#include "../transports/vm.h"
#include "../common/config.h"
#include "cbt.h"
#include "fs.h"
#include "layers.h"
#include "provider.h"

#define VMDKFS_VERSION "0.1"

/* ---- Command line ---- */

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: vmdkfs [options] DISK.vmdk... MOUNTPOINT\n"
	    "       vmdkfs [options] -o server=HOST,vm=VM[,snapshot=S] "
	    "MOUNTPOINT\n"
	    "       vmdkfs [options] -o server=HOST[,vms=GLOB] MOUNTPOINT\n"
	    "       vmdkfs info [--json] DISK.vmdk\n"
	    "       vmdkfs info [--json] --lun DEV[:DEV...] [--partition N] "
	    "[/PATH.vmdk]\n"
	    "       vmdkfs status MOUNTPOINT\n"
	    "       vmdkfs cleanup -o server=HOST,user=USER[,vm=VM]\n"
	    "       vmdkfs --list-transports | --help | --version\n"
	    "\n"
	    "commands:\n"
	    "  (none)             mount the disks (local files, or a VM's\n"
	    "                     disks through vCenter/ESXi with server=;\n"
	    "                     without vm=, every VM's snapshots)\n"
	    "  info               a disk's chain, extents and capacity\n"
	    "  status             each file of a mount: transport, size, "
	    "source\n"
	    "  cleanup            remove leftover vmdkfs-* snapshots and "
	    "re-enable\n"
	    "                     what an interrupted mount disabled\n"
	    "  --list-transports  the transports of this build\n"
	    "\n"
	    "Mounts each disk as a flat file MOUNTPOINT/NAME.raw (NAME: the\n"
	    "disk's file name without .vmdk, characters other than\n"
	    "A-Z a-z 0-9 . _ + - replaced by _; -2, -3... added to repeats).\n"
	    "\n"
	    "options:\n"
	    "  -f                 stay in the foreground\n"
	    "  -d                 debug: foreground, FUSE and vmdkfs "
	    "debug output\n"
	    "  -s                 single-threaded\n"
	    "  -o OPT[,OPT...]    mount options (below), fstab style\n"
	    "  -h, --help         this help\n"
	    "  -V, --version      version\n"
	    "\n"
	    "mount options (also accepted as name=value lines by "
	    "-o config=FILE):\n"
	    "  config=FILE                                  read options "
	    "from FILE first\n");
	if (out == stdout)
		config_print_keys();
	fprintf(out, "  FUSE options passed on: allow_other, allow_root, "
		     "default_permissions,\n"
		     "  auto_unmount, fsname=, subtype=; fstab words dropped: "
		     "defaults, auto,\n"
		     "  noauto, user, nouser, users, _netdev, nofail, x-*, "
		     "comment=.\n");
}

static const char *const fuse_passthrough[] = {
    "allow_other", "allow_root", "default_permissions", "auto_unmount", NULL,
};
static const char *const fuse_passthrough_val[] = {"fsname", "subtype", NULL};
static const char *const fstab_noise[] = {
    "defaults", "auto",	  "noauto", "user",    "nouser",   "users",
    "_netdev",	"nofail", "dev",    "nodev",   "suid",	   "nosuid",
    "exec",	"noexec", "atime",  "noatime", "relatime", NULL,
};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

struct cmdline {
	char **opts; /* -o items, in order */
	size_t nopts;
	char **paths; /* disks, then the mount point */
	size_t npaths;
	bool foreground, debug, single;
	struct fuse_args fargs;
};

static int push(char ***v, size_t *n, char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = s;
	*v = nv;
	return 0;
}

/* Split an -o list at commas into c->opts. */
static int add_opts(struct cmdline *c, const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *s = strdup(tok);

		if (!s || push(&c->opts, &c->nopts, s) < 0) {
			free(s);
			free(copy);
			return -ENOMEM;
		}
	}
	free(copy);
	return 0;
}

/* Apply the -o options: config files first, then the rest in order.
 * FUSE options go to c->fargs.  Returns 0 or -EINVAL (message printed). */
static int apply_opts(struct cmdline *c, struct config *cfg)
{
	size_t i;

	for (i = 0; i < c->nopts; i++) {
		if (strncasecmp(c->opts[i], "config=", 7) == 0 &&
		    config_load(cfg, c->opts[i] + 7) < 0) {
			fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
			return -EINVAL;
		}
	}
	for (i = 0; i < c->nopts; i++) {
		char *o = c->opts[i], *eq = strchr(o, '='), *arg;
		char key[256];

		if (strncasecmp(o, "config=", 7) == 0)
			continue;
		snprintf(key, sizeof(key), "%.*s",
			 (int)(eq ? (size_t)(eq - o) : strlen(o)), o);
		if ((!eq && in_list(fstab_noise, key)) ||
		    strncmp(key, "x-", 2) == 0 || strcmp(key, "comment") == 0)
			continue;
		if ((!eq && in_list(fuse_passthrough, key)) ||
		    (eq && in_list(fuse_passthrough_val, key))) {
			if (asprintf(&arg, "-o%s", o) < 0 ||
			    fuse_opt_add_arg(&c->fargs, arg) < 0)
				return -ENOMEM;
			free(arg);
			continue;
		}
		if (config_set(cfg, key, eq ? eq + 1 : NULL, "-o") < 0) {
			fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
			return -EINVAL;
		}
	}
	return 0;
}

static void free_cmdline(struct cmdline *c)
{
	size_t i;

	for (i = 0; i < c->nopts; i++)
		free(c->opts[i]);
	free(c->opts);
	free(c->paths);
	fuse_opt_free_args(&c->fargs);
}

/* 0, 1 when --help or --version was answered, or -errno. */
static int parse_cmdline(int argc, char **argv, struct cmdline *c)
{
	int i;
	bool dashdash = false;

	for (i = 1; i < argc; i++) {
		char *a = argv[i];

		if (dashdash || a[0] != '-' || !a[1]) {
			if (push(&c->paths, &c->npaths, a) < 0)
				return -ENOMEM;
		} else if (strcmp(a, "--") == 0) {
			dashdash = true;
		} else if (strcmp(a, "-f") == 0) {
			c->foreground = true;
		} else if (strcmp(a, "-d") == 0 || strcmp(a, "--debug") == 0) {
			c->debug = c->foreground = true;
		} else if (strcmp(a, "-s") == 0) {
			c->single = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 1;
		} else if (strcmp(a, "-V") == 0 ||
			   strcmp(a, "--version") == 0) {
			printf("vmdkfs %s\n", VMDKFS_VERSION);
			return 1;
		} else if (strcmp(a, "-o") == 0) {
			if (++i >= argc) {
				fprintf(stderr, "vmdkfs: -o needs a value\n");
				return -EINVAL;
			}
			if (add_opts(c, argv[i]) < 0)
				return -ENOMEM;
		} else if (strncmp(a, "-o", 2) == 0) {
			if (add_opts(c, a + 2) < 0)
				return -ENOMEM;
		} else {
			fprintf(stderr,
				"vmdkfs: unknown option %s (see "
				"vmdkfs --help)\n",
				a);
			return -EINVAL;
		}
	}
	return 0;
}

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The same disk given twice (by any names) is refused: its file would be
 * shown twice and, on a rw mount, locked against itself. */
static bool same_disk_twice(const struct cmdline *c)
{
	size_t i, j;

	for (i = 0; i + 1 < c->npaths; i++) {
		struct stat a, b;

		if (stat(c->paths[i], &a) < 0)
			continue;
		for (j = i + 1; j + 1 < c->npaths; j++)
			if (stat(c->paths[j], &b) == 0 &&
			    a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
				fprintf(stderr,
					"vmdkfs: %s and %s are the same disk; "
					"give it once\n",
					c->paths[i], c->paths[j]);
				return true;
			}
	}
	return false;
}

/* What fills the tree, by the options. */
static const struct fs_provider *pick_provider(void)
{
	if (fs_cfg.lun)
		return &fs_lun_provider;
	if (fs_cfg.server && !fs_cfg.vm)
		return &fs_browse_provider; /* the whole inventory */
	if (fs_cfg.server)
		return &fs_vm_provider;
	return &fs_local_provider;
}

int main(int argc, char **argv)
{
	struct cmdline c = {.fargs = FUSE_ARGS_INIT(0, NULL)};
	const struct fs_provider *provider;
	int r, status = 1;

	bool cleanup = false;
	char *mountpoint = NULL;
	struct stat st;

	/* Every read is a buffer of up to 1 MiB (libfuse's, and the
	 * alignment layer's bounce for O_DIRECT): keep such buffers on the
	 * heap and the heap from shrinking, or each request maps, faults in
	 * and unmaps 256 fresh pages (measured: a third of the time of a
	 * sequential read over san). */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 128 << 20);
	/* Before anything can write to a socket or take minutes. */
	sig_init();
	if (argc >= 2 && strcmp(argv[1], "info") == 0)
		return fs_info_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return fs_status_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "apply-changes") == 0)
		return fs_apply_changes_main(argc - 1, argv + 1); /* cbt.c */
	if (argc >= 2 && strcmp(argv[1], "cleanup") == 0) {
		cleanup = true;
		argv++;
		argc--;
	}
	if (argc >= 2 && strcmp(argv[1], "--list-transports") == 0) {
		printf("%s\n", transport_list());
		return 0;
	}
	if (argc >= 2 &&
	    (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2 &&
	    (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))) {
		printf("vmdkfs %s\n", VMDKFS_VERSION);
		return 0;
	}
	config_init(&fs_cfg);
	if (fuse_opt_add_arg(&c.fargs, argv[0]) < 0)
		goto out;
	r = parse_cmdline(argc, argv, &c);
	if (r != 0) { /* 1: --help or --version done */
		status = r > 0 ? 0 : 2;
		goto out;
	}
	if (apply_opts(&c, &fs_cfg) < 0) {
		status = 2;
		goto out;
	}
	progress_quiet(fs_cfg.quiet);
	if (cleanup) {
		if (!fs_cfg.server || c.npaths) {
			fprintf(stderr, "usage: vmdkfs cleanup -o server=HOST,"
					"user=...[,vm=...]\n");
			status = 2;
			goto out;
		}
		vmdkfs_log_open(fs_cfg.tmp_directory, fs_cfg.log_file,
				    fs_cfg.log_level);
		status = vm_cleanup(&fs_cfg, NULL);
		goto out;
	}
	if (fs_cfg.server && fs_cfg.lun) {
		fprintf(stderr, "vmdkfs: give server= or lun=, not both\n");
		status = 2;
		goto out;
	}
	if (fs_cfg.lun && fs_cfg.rw) {
		fprintf(stderr, "vmdkfs: lun= mounts are read-only\n");
		status = 2;
		goto out;
	}
	if (c.npaths < (fs_cfg.server || fs_cfg.lun ? 1u : 2u) ||
	    ((fs_cfg.server || fs_cfg.lun) && c.npaths != 1)) {
		if (fs_cfg.server || fs_cfg.lun)
			fprintf(stderr, "vmdkfs: with %s=, give only the "
					"mount point\n",
				fs_cfg.server ? "server" : "lun");
		else if (c.npaths == 0)
			fprintf(stderr, "vmdkfs: no disk and no mount point "
					"given\n");
		else if (is_dir(c.paths[0]))
			fprintf(stderr,
				"vmdkfs: no disk given to mount on %s "
				"(or -o server=... for a VM's disks)\n",
				c.paths[0]);
		else
			fprintf(stderr, "vmdkfs: no mount point given after %s\n",
				c.paths[0]);
		fprintf(stderr, "(vmdkfs --help for more)\n");
		status = 2;
		goto out;
	}
	if (!fs_cfg.server && !fs_cfg.lun && same_disk_twice(&c)) {
		status = 2;
		goto out;
	}
	vmdkfs_log_stderr(c.debug ? LOG_DEBUG : LOG_WARN);
	if (vmdkfs_log_open(fs_cfg.tmp_directory, fs_cfg.log_file,
				    fs_cfg.log_level) < 0)
		fprintf(stderr, "vmdkfs: warning: %s\n", vmdkfs_errmsg());
	if (fs_cfg.transports && transport_check_modes(fs_cfg.transports) < 0) {
		fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
		status = 2;
		goto out;
	}
	/* Absolute: libfuse changes to / before it unmounts. */
	mountpoint = realpath(c.paths[c.npaths - 1], NULL);
	if (!mountpoint) {
		fprintf(stderr, "vmdkfs: mount point %s: %s\n",
			c.paths[c.npaths - 1], strerror(errno));
		goto out;
	}
	if (stat(mountpoint, &st) == 0 && !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "vmdkfs: mount point %s: not a directory\n",
			c.paths[c.npaths - 1]);
		status = 2;
		goto out;
	}
	if (fs_vmdkfs_mount(mountpoint, NULL, NULL)) {
		fprintf(stderr,
			"vmdkfs: %s is already a vmdkfs mount (unmount it "
			"first: fusermount3 -u %s)\n",
			c.paths[c.npaths - 1], c.paths[c.npaths - 1]);
		status = 2;
		goto out;
	}
	/* The scratch layer: its store before any disk is added. */
	if (fs_cfg.scratch && fs_cfg.rw) {
		fprintf(stderr, "vmdkfs: scratch is for read-only mounts (rw "
				"writes the disks themselves)\n");
		status = 2;
		goto out;
	}
	if (fs_scratch_open(fs_cfg.scratch, fs_cfg.scratch_max) < 0) {
		fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
		status = 2;
		goto out;
	}
	fs_set_disk_hooks(fs_cfg.partitions ? fs_part_expand : NULL,
			  fs_scratch_on() ? fs_scratch_wrap : NULL);
	provider = pick_provider();
	r = provider->open(c.paths, c.npaths - 1);
	/* A stop signal that came while opening (whatever saw it or not)
	 * means no mount: undo what was done. */
	if (r == 0 && sig_stop_requested()) {
		r = sig_stop_error("opening the disks");
		fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
	}
	if (r == 0)
		status = fs_serve(provider, &c.fargs, mountpoint, c.foreground,
				  c.single, c.debug);
	/* From here a stop signal cancels nothing: the undoing runs to its
	 * end.  Disks first, then the temporary snapshot, then EndAccess. */
	sig_cleanup_begin();
	if (provider->close_disks)
		provider->close_disks();
	fs_close_all();
	fs_scratch_close(); /* after the layers, closed with the tree */
	if (provider->close)
		provider->close();
out:
	free(mountpoint);
	vmdkfs_log_close();
	config_free(&fs_cfg);
	free_cmdline(&c);
	return status;
}
