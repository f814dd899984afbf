# vmdkfs — see README.md.
CC ?= cc
PKGS = fuse3 libcurl libxml-2.0 openssl zlib
# The nbdkit plugin's: headers only (nbdkit itself loads the plugin).
NBDKIT_PLUGINDIR := $(shell pkg-config --variable=plugindir nbdkit 2>/dev/null)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# A fresh machine: say what is missing and how to get it, not a compiler
# error (the targets that install first are let through).
ifeq ($(filter deps check check-long demo lab bench clean,$(MAKECMDGOALS)),)
ifneq ($(shell pkg-config --exists $(PKGS) nbdkit 2>/dev/null && echo ok),ok)
MISSING := $(shell scripts/install-deps.sh --missing build 2>/dev/null)
ifneq ($(MISSING),)
$(error missing Debian packages: $(MISSING); install them with "make deps" (as root) or "apt-get install -y $(MISSING)")
else
$(error pkg-config does not find $(PKGS) nbdkit: is pkg-config installed, with their -dev packages?)
endif
endif
endif
WARN = -Wall -Wextra -Werror -Wshadow -Wvla
CFLAGS ?= -O2 -g
# -fPIC: the library goes into the nbdkit plugin (a shared object) too.
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(PKG_CFLAGS) -fPIC -MMD -MP -pthread
LDLIBS = $(PKG_LIBS) -pthread

# Objects go to $(BUILD); a sanitizer build keeps its own folder and
# makes vmdkfs-san (run the tests with VMDKFS=$PWD/vmdkfs-san), so the two
# builds never take each other's place.
PLUGIN = nbdkit/nbdkit-vmdkfs-plugin$(if $(SANITIZE),-san).so
ifdef SANITIZE
# A report ends the process (tests/run.sh fails the test that made one).
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
BUILD ?= build-san
PROG = vmdkfs-san
else
BUILD ?= build
PROG = vmdkfs
endif

COMMON = common/err.c common/source.c common/lru.c common/progress.c \
	common/sig.c common/config.c
VMDK = vmdk/desc.c vmdk/sparse.c vmdk/vmdk.c vmdk/write.c vmdk/adler.c
TRANSPORTS = transports/align.c transports/transport.c transports/file.c \
	transports/nfc.c transports/lun.c transports/san.c \
	transports/areas.c
FS = fs/main.c fs/tree.c fs/info.c fs/local.c fs/vsmount.c fs/lunmount.c
# Partitions as files and the scratch layer (disk wrappers for the tree)
FS += fs/partition.c fs/scratch.c
# Changed block tracking: holes over the LAN, changed_since= views
FS += fs/cbt.c
# Browsing a whole vCenter or ESXi host (server= without vm=)
FS += fs/browse.c
VSPHERE = vsphere/soap.c vsphere/inventory.c vsphere/cbt.c
# The hotadd transport (proxy VM, SCSI hot-add)
TRANSPORTS += transports/hotadd.c
# A VM's disks for a front end (ConnectEx, PrepareForAccess, snapshots)
TRANSPORTS += transports/vm.c transports/guard.c
VSPHERE += vsphere/hotadd.c
VMFS = vmfs/lvm.c vmfs/volume.c vmfs/file.c vmfs/dir.c
PART = part/part.c
LIB_SRCS = $(COMMON) $(VMDK) $(VMFS) $(PART)

# The library: every layer but the front ends, with no FUSE and no nbdkit
# in it (tests/test-layers.sh checks), under fs/ (the FUSE mount) and
# nbdkit/ (the plugin).
LIB = $(BUILD)/libvmdkfs.a
LIB_OBJS = $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS) $(TRANSPORTS) $(VSPHERE))
FS_OBJS = $(patsubst %.c,$(BUILD)/%.o,$(FS))
OBJS = $(LIB_OBJS) $(FS_OBJS)

# The test programs of a sanitizer build are named -san, as vmdkfs-san is.
SFX = $(if $(SANITIZE),-san)
UNIT_TESTS = $(addsuffix -test$(SFX),$(addprefix tests/unit/,desc lru align \
	adler part))
FUZZERS = tests/fuzz/desc-fuzz tests/fuzz/vmdk4-fuzz tests/fuzz/cowd-fuzz \
	tests/fuzz/sesparse-fuzz tests/fuzz/image-fuzz tests/fuzz/vmfs-fuzz \
	tests/fuzz/part-fuzz tests/fuzz/soap-fuzz tests/fuzz/nfc-fuzz
# The VMFS reader on the command line, for tests/test-vmfs.sh (a sanitizer
# build makes its own, vmfs-tool-san).
VMFS_TOOL = tests/vmfs/vmfs-tool$(if $(SANITIZE),-san)
# The partition-table reader on the command line, for tests/test-part.sh.
PART_TOOL = tests/part/part-tool$(SFX)

.PHONY: all clean check check-long unit fuzz demo bench deps install lab
PREFIX ?= /usr/local
all: $(PROG) $(PLUGIN)

$(LIB): $(LIB_OBJS)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJS)

$(PROG): $(FS_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(FS_OBJS) $(LIB) $(LDLIBS)

# The nbdkit front end: the library's symbols stay inside it.
PLUGIN_LIBS = $(shell pkg-config --libs libcurl libxml-2.0 openssl zlib 2>/dev/null) -pthread
$(PLUGIN): $(BUILD)/nbdkit/vmdkfs.o $(LIB)
	$(CC) $(LDFLAGS) -shared -Wl,--exclude-libs,ALL \
		-o $@ $(BUILD)/nbdkit/vmdkfs.o $(LIB) $(PLUGIN_LIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

tests/unit/align-test$(SFX): tests/unit/align-test.c $(patsubst %.c,$(BUILD)/%.o,$(COMMON) transports/align.c)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

tests/unit/%-test$(SFX): tests/unit/%-test.c $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit: $(UNIT_TESTS)

$(VMFS_TOOL): tests/vmfs/vmfs-tool.c tests/fuzz/vmfs-walk.h vmfs/vmfs.h \
		$(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)

$(PART_TOOL): tests/part/part-tool.c part/part.h \
		$(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)

# libFuzzer targets (clang).  FUZZ_SECONDS bounds each run of `make fuzz`;
# FUZZ_RUNS=N runs each N times instead (make fuzz FUZZ_RUNS=10000000
# FUZZERS=tests/fuzz/nfc-fuzz: one target).
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_FLAGS = -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS) -pthread
tests/fuzz/desc-fuzz: tests/fuzz/desc-fuzz.c $(LIB_SRCS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS)
tests/fuzz/vmfs-fuzz: tests/fuzz/vmfs-fuzz.c tests/fuzz/vmfs-walk.h $(LIB_SRCS) \
		vmfs/vmfs.h vmfs/internal.h
	$(FUZZ_CC) $(FUZZ_FLAGS) -fno-sanitize-recover=undefined -o $@ \
		$(filter %.c,$^) $(PKG_LIBS)
# (the partition reader also takes a stored CRC of 0 there: see crc_ok)
tests/fuzz/part-fuzz: tests/fuzz/part-fuzz.c part/part.h $(LIB_SRCS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fno-sanitize-recover=undefined \
		-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -o $@ \
		$(filter %.c,$^) $(PKG_LIBS)
# SOAP answers (vsphere/), with no network: vs_config.answer.
tests/fuzz/soap-fuzz: tests/fuzz/soap-fuzz.c $(LIB_SRCS) $(VSPHERE) \
		vsphere/vsphere.h vsphere/cbt.h
	$(FUZZ_CC) $(FUZZ_FLAGS) -fno-sanitize-recover=undefined \
		-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -o $@ \
		$(filter %.c,$^) $(PKG_LIBS)
# NFC replies (transports/nfc.c, included whole), over a socketpair.
tests/fuzz/nfc-fuzz: tests/fuzz/nfc-fuzz.c transports/nfc.c $(LIB_SRCS) \
		$(VSPHERE) transports/transport.h vsphere/vsphere.h
	$(FUZZ_CC) $(FUZZ_FLAGS) -fno-sanitize-recover=undefined \
		-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -o $@ \
		$(filter-out transports/nfc.c,$(filter %.c,$^)) $(PKG_LIBS)
tests/fuzz/%-fuzz: tests/fuzz/header-fuzz.c $(LIB_SRCS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -DFUZZ_$(shell echo $* | tr a-z A-Z) -o $@ $^ $(PKG_LIBS)

fuzz: $(FUZZERS) $(VMFS_TOOL)
	tests/fuzz/make-seeds.sh build/fuzz-seeds
	tests/fuzz/nfc-seeds.py build/nfc-seeds
	@for f in $(FUZZERS); do \
		n=$$(basename $$f); mkdir -p build/corpus/$$n; \
		echo "fuzz: $$f for $(if $(FUZZ_RUNS),$(FUZZ_RUNS) runs,$(FUZZ_SECONDS)s) (log: build/$$n.log)"; \
		seeds=build/fuzz-seeds; \
		[ $$n = soap-fuzz ] && seeds="tests/fuzz/soap-seeds -max_len=65536"; \
		[ $$n = nfc-fuzz ] && seeds="build/nfc-seeds -max_len=65536"; \
		$$f $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_SECONDS)) \
			-rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
			build/corpus/$$n $$seeds >build/$$n.log 2>&1 || \
			{ tail -30 build/$$n.log; exit 1; }; \
	done; \
	echo "target          runs  coverage  features  corpus"; \
	for f in $(FUZZERS); do \
		n=$$(basename $$f); \
		grep -E '(DONE|pulse|NEW|REDUCE)' build/$$n.log | tail -1 | \
		sed -E 's/^#([0-9]+).*cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/\1 \2 \3 \4/' | \
		{ read r c ft co; printf '%-14s %6s %9s %9s %7s\n' $$n "$$r" "$$c" "$$ft" "$$co"; }; \
	done

deps:
	scripts/install-deps.sh build

# The whole fault matrix: every fault at every step (make check runs a
# short pass of it).
check-long:
	scripts/install-deps.sh test
	$(MAKE) vmdkfs
	FAULTS_FULL=1 ONLY=test-faults.sh tests/run.sh

# make check SANITIZE=address,undefined: the same tests over vmdkfs-san
# and the -san tools; any sanitizer report (a leak too) fails its test.
check:
	scripts/install-deps.sh test
	$(MAKE) $(PROG) $(PLUGIN) unit $(FUZZERS) $(VMFS_TOOL) $(PART_TOOL)
	VMDKFS=$(CURDIR)/$(PROG) PART_TOOL=$(CURDIR)/$(PART_TOOL) BUILD_DIR=$(BUILD) \
		UNIT_SFX=$(SFX) SAN_CHECK=$(if $(SANITIZE),1) tests/run.sh

demo:
	scripts/install-deps.sh demo
	$(MAKE) vmdkfs
	scripts/demo.sh

lab:
	scripts/install-deps.sh test
	$(MAKE) vmdkfs
	scripts/lab.sh

bench:
	scripts/install-deps.sh bench
	$(MAKE) vmdkfs $(PLUGIN) scripts/fuse-ceiling scripts/stream-read
	scripts/bench-all.sh

# The FUSE ceiling of make bench: FUSE alone, serving bytes from memory.
scripts/fuse-ceiling: scripts/fuse-ceiling.c
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# Its plain TCP and TLS readers (the lab's -stream sends).
scripts/stream-read: scripts/stream-read.c
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# The plugin where nbdkit looks for plugins by name (nbdkit vmdkfs ...).
install: $(PROG) $(PLUGIN)
	install -D -m 755 $(PROG) $(DESTDIR)$(PREFIX)/bin/vmdkfs
	install -D -m 644 vmdkfs.1 $(DESTDIR)$(PREFIX)/share/man/man1/vmdkfs.1
	install -D -m 755 $(PLUGIN) \
		$(DESTDIR)$(NBDKIT_PLUGINDIR)/nbdkit-vmdkfs-plugin.so
	install -D -m 644 nbdkit/nbdkit-vmdkfs-plugin.1 \
		$(DESTDIR)$(PREFIX)/share/man/man1/nbdkit-vmdkfs-plugin.1

clean:
	rm -rf build build-san vmdkfs vmdkfs-san $(UNIT_TESTS) $(FUZZERS) \
		nbdkit/*.so \
		tests/unit/*-test-san tests/part/part-tool-san \
		tests/vmfs/vmfs-tool tests/vmfs/vmfs-tool-san $(PART_TOOL) \
		scripts/fuse-ceiling scripts/fuse-ceiling.d \
		scripts/stream-read scripts/stream-read.d

-include $(OBJS:.o=.d) $(BUILD)/nbdkit/vmdkfs.d $(patsubst %.c,$(BUILD)/%.d,$(VMFS) $(PART))
