# Top-level build of the DDNS backend.
#
#   make              build everything into build/ (programs in build/bin)
#   make run          start PostgreSQL, Knot DNS and the gateway locally with a demo device
#   make test         unit tests, then the integration tests against real servers
#   make deps         install the Debian packages that are missing (scripts/install-deps);
#                     run, test, test-asan, test-valgrind, test-cluster, soak, bench
#                     and sdk-size do it first by themselves
#   make test-unit    C unit tests only
#   make test-integration  pytest suite only (builds first)
#   make test-cluster the scale-out topology of docker/compose.yml on loopback:
#                     PostgreSQL, Knot primary + secondary (IXFR), two gateways
#                     behind HAProxy (PROXY v2), PgBouncer; and the docker/
#                     and deploy/ files checked (part of make test too)
#   make test-asan    the same unit and integration tests with every program
#                     built with AddressSanitizer + UndefinedBehaviorSanitizer
#                     (into build/asan)
#   make test-valgrind  the unit tests under valgrind (no error, no leak)
#   make soak     the long soak: two gateways under load while PostgreSQL,
#                 Knot DNS and one gateway are restarted (tests/soak.py)
#   make bench        release build (build/release, -O2, no sanitizers), then
#                     the benchmark scenarios of bench/bench.py with their
#                     figures, baselines and targets (bench/README.md)
#   make install      [PREFIX=/usr/local] [DESTDIR=...]: the firmware SDK, ddnsctl and
#                     the web console's files (share/ddns/console)
#   make clean
#
# Each part contributes a fragment: common/common.mk, firmware-sdk/sdk.mk,
# gateway/gateway.mk, provisioning/provisioning.mk, bench/bench.mk,
# tests/unit/unit.mk.

BUILD    ?= build
BIN      := $(BUILD)/bin
CC       ?= cc
OPT      ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wshadow
CFLAGS_C11 := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(EXTRA_CFLAGS)
CFLAGS_C99 := -std=c99 -pedantic $(OPT) $(WARN) -Wconversion -Wsign-conversion $(EXTRA_CFLAGS)
LDFLAGS  += $(EXTRA_LDFLAGS)
PKG      := pkg-config
# -rs: the reason of every skipped test is printed above pytest's summary
# line, which counts them.
PYTEST   ?= /usr/bin/python3 -m pytest -rs
# Checks of test-unit that the machine cannot run (say, a 32-bit x86 program
# on a kernel without IA32 emulation) leave their reason in a file of this
# folder; test-unit's summary line counts and prints them.
SKIP_DIR := $(BUILD)/skips
# AddressSanitizer of clang 14 and gcc 12 puts its shadow memory where a
# kernel with more than 28 bits of mmap randomisation (vm.mmap_rnd_bits; 32
# on some distributions' kernels) may already have mapped the program: it
# then hangs or dies at start, about one run in four. There, every
# sanitized program (fuzzers, sanitized unit tests, test-asan's servers)
# runs with address randomisation off, which setarch -R passes on to all
# its children.
MMAP_RND_BITS ?= $(shell cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28)
SAN_RUN  := $(if $(shell [ "$(MMAP_RND_BITS)" -gt 28 ] 2>/dev/null && echo y),setarch $(shell uname -m) -R)
ifneq ($(SAN_RUN),)
ifeq ($(MAKELEVEL),0)
$(info note: vm.mmap_rnd_bits is $(MMAP_RND_BITS): sanitized programs run under '$(SAN_RUN)' (no address randomisation))
endif
endif

.PHONY: all test test-unit test-integration test-cluster test-asan test-valgrind soak bench run clean deps browser-deps install
all:

include common/common.mk
include firmware-sdk/sdk.mk
include gateway/gateway.mk
include provisioning/provisioning.mk
include ddnsctl/ddnsctl.mk
include bench/bench.mk
include tests/unit/unit.mk

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_C11) $(CPPFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# The entry points install what is missing first, then build and run in a
# make of their own: that one reads pkg-config after the install. The
# fragments' pkg-config variables are recursive (=), so a make whose
# packages are not there yet never calls pkg-config at all.
deps:
	@scripts/install-deps

test: deps
	@$(MAKE) --no-print-directory test-unit test-integration

# The browser tests (tests/integration/test_console.py runs
# tests/browser/console.test.mjs) need playwright-core from npm: npm ci
# installs the locked version when node_modules is missing or older than the
# lock file. Chromium itself is Debian's (scripts/install-deps).
BROWSER_DEPS := tests/browser/node_modules/.package-lock.json
$(BROWSER_DEPS): tests/browser/package-lock.json tests/browser/package.json
	cd tests/browser && npm ci --no-audit --no-fund
	@touch $@
browser-deps: $(BROWSER_DEPS)

test-integration: all $(BROWSER_DEPS)
	DDNS_BIN=$(CURDIR)/$(BIN) $(PYTEST) -q tests/integration

CLUSTER_TESTS := tests/integration/test_cluster.py tests/integration/test_deploy_files.py
test-cluster: deps
	@$(MAKE) --no-print-directory all
	DDNS_BIN=$(CURDIR)/$(BIN) $(PYTEST) -q $(CLUSTER_TESTS)

SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
test-asan: deps
	@$(MAKE) --no-print-directory $(BROWSER_DEPS)
	$(MAKE) BUILD=build/asan OPT="-O1 -g" EXTRA_CFLAGS="$(SAN_FLAGS)" \
	    EXTRA_LDFLAGS="$(SAN_FLAGS)" all test-unit
	DDNS_BIN=$(CURDIR)/build/asan/bin DDNS_SANITIZED=1 $(SAN_RUN) $(PYTEST) -q tests/integration

# The long soak (a 20-second form is part of test-integration): SOAK_SECONDS
# of load from SOAK_DEVICES devices through two gateways, with PostgreSQL,
# Knot DNS and one gateway restarted at random moments (SOAK_SEED repeats).
SOAK_SECONDS ?= 600
SOAK_DEVICES ?= 200
soak: deps
	@$(MAKE) --no-print-directory all
	DDNS_BIN=$(CURDIR)/$(BIN) DDNS_SOAK_SECONDS=$(SOAK_SECONDS) DDNS_SOAK_DEVICES=$(SOAK_DEVICES) \
	    DDNS_SOAK_THREADS=10 $(if $(SOAK_SEED),DDNS_SOAK_SEED=$(SOAK_SEED)) \
	    $(PYTEST) -q -s tests/integration/test_soak.py

# A missed target is reported as MISSED, not as a failure; the exit status
# is nonzero only when a scenario cannot run.
BENCH_BUILD := build/release
bench: deps
	$(MAKE) BUILD=$(BENCH_BUILD) OPT=-O2 EXTRA_CFLAGS= EXTRA_LDFLAGS= all
	DDNS_BIN=$(CURDIR)/$(BENCH_BUILD)/bin /usr/bin/python3 bench/bench.py

# make run installs missing Debian packages first, then builds and starts.
run: deps
	@$(MAKE) --no-print-directory all
	scripts/run-demo

clean:
	rm -rf $(BUILD)
