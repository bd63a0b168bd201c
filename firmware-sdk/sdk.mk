# Firmware SDK: libddns_sdk.a (C99, no heap, no I/O), the reference Linux
# client ddns-client and the SDK unit tests.
#
# The library objects are built by the explicit rule below with the strict
# C99 flags into $(BUILD)/sdk/, apart from the C11 objects of the generic
# top-level rule.

SDK_DIR      := firmware-sdk
SDK_INC      := -I$(SDK_DIR)/include
SDK_SRCS     := $(wildcard $(SDK_DIR)/src/*.c)
SDK_OBJS     := $(patsubst $(SDK_DIR)/src/%.c,$(BUILD)/sdk/lib/%.o,$(SDK_SRCS))
SDK_LIB      := $(BUILD)/lib/libddns_sdk.a
SDK_CLIENT   := $(BIN)/ddns-client
SDK_TEST     := $(BUILD)/tests/test_sdk
SDK_CLIENT_PKGS := openssl jansson
# The reference Linux client is C11 with OpenSSL and a heap: it lives in
# tools/, outside the C99 library it is built on.
SDK_CLIENT_OBJ  := $(BUILD)/sdk/tools/ddns-client/ddns_client.o

$(BUILD)/sdk/lib/%.o: $(SDK_DIR)/src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_C99) $(SDK_INC) -MMD -MP -c -o $@ $<

$(SDK_LIB): $(SDK_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(SDK_CLIENT_OBJ): $(SDK_DIR)/tools/ddns-client/ddns_client.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_C11) $(SDK_INC) $(shell $(PKG) --cflags $(SDK_CLIENT_PKGS)) -MMD -MP -c -o $@ $<

$(SDK_CLIENT): $(SDK_CLIENT_OBJ) $(SDK_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell $(PKG) --libs $(SDK_CLIENT_PKGS))

$(BUILD)/sdk/tests/test_sdk.o: $(SDK_DIR)/tests/test_sdk.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_C11) $(SDK_INC) -Itests/unit $(shell $(PKG) --cflags cmocka) -MMD -MP -c -o $@ $<

$(SDK_TEST): $(BUILD)/sdk/tests/test_sdk.o $(BUILD)/tests/unit/vectors.o $(SDK_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell $(PKG) --libs cmocka)

UNIT_TESTS += $(SDK_TEST)

all: $(SDK_LIB) $(SDK_CLIENT)

# ---- Size on Cortex-M (arm-none-eabi-gcc) ---------------------------------
# make sdk-size: per-file code size, totals with and without the built-in
# crypto, .data/.bss, context size and worst-case stack on cortex-m0plus and
# cortex-m4, checked against the targets of firmware-sdk/README.md.
SDK_SIZE_DIR := $(BUILD)/sdk-size
ARM_CC       ?= arm-none-eabi-gcc

.PHONY: sdk-size
sdk-size: deps
	python3 $(SDK_DIR)/tools/sdk_size.py --build $(SDK_SIZE_DIR) --cc $(ARM_CC) --check

# ---- Fuzzing (clang, libFuzzer, ASan + UBSan) -------------------------------
# Two targets, fuzz_response (answer and HTTP parsers, ddns_next) and
# fuzz_request (builders), built from the SDK sources with clang.
#   make sdk-fuzz-smoke  each target for SDK_FUZZ_RUNS inputs from the seed
#                        corpus (part of make test-unit)
#   make fuzz            each target for FUZZ_TIME seconds, keeping what it
#                        finds in $(BUILD)/fuzz/corpus-*
FUZZ_CC       ?= clang
FUZZ_FLAGS    := -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                 -Wall -Wextra -Werror
SDK_FUZZ_RUNS ?= 100000
FUZZ_TIME     ?= 300
SDK_FUZZERS   := $(BUILD)/fuzz/fuzz_response $(BUILD)/fuzz/fuzz_request

$(BUILD)/fuzz/%: $(SDK_DIR)/fuzz/%.c $(SDK_SRCS) $(wildcard $(SDK_DIR)/src/*.h) $(wildcard $(SDK_DIR)/include/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(SDK_INC) -o $@ $< $(SDK_SRCS)

.PHONY: sdk-fuzz-smoke fuzz
sdk-fuzz-smoke: $(SDK_FUZZERS)
	@for f in $(SDK_FUZZERS); do \
	    name=$$(basename $$f); seeds=$(SDK_DIR)/fuzz/corpus/$${name#fuzz_}; \
	    work=$(BUILD)/fuzz/smoke-$$name; rm -rf $$work; mkdir -p $$work; \
	    if $(SAN_RUN) $$f -runs=$(SDK_FUZZ_RUNS) -seed=1 -artifact_prefix=$(BUILD)/fuzz/ $$work $$seeds > $(BUILD)/fuzz/$$name.log 2>&1; then \
	        echo "$$name: $(SDK_FUZZ_RUNS) inputs, no failure ($$(grep -o 'cov: [0-9]*' $(BUILD)/fuzz/$$name.log | tail -1))"; \
	    else tail -40 $(BUILD)/fuzz/$$name.log; echo "$$name: FAILED (log: $(BUILD)/fuzz/$$name.log)"; exit 1; fi; \
	done

fuzz: $(SDK_FUZZERS)
	@for f in $(SDK_FUZZERS); do \
	    name=$$(basename $$f); seeds=$(SDK_DIR)/fuzz/corpus/$${name#fuzz_}; \
	    corpus=$(BUILD)/fuzz/corpus-$$name; mkdir -p $$corpus; \
	    echo "$$name: $(FUZZ_TIME) s, corpus $$corpus"; \
	    $(SAN_RUN) $$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/ $$corpus $$seeds || exit 1; \
	done

test-unit: sdk-fuzz-smoke

# ---- Coverage (gcc --coverage, lcov) ----------------------------------------
# make coverage: the SDK unit tests against SDK sources built with
# --coverage; prints line and branch coverage of every src/*.c file and
# fails below SDK_COVERAGE_MIN percent for either total.
SDK_COV_DIR      := $(BUILD)/sdk-coverage
SDK_COVERAGE_MIN ?= 95

.PHONY: coverage
coverage: $(VECTORS_OBJ)
	@rm -rf $(SDK_COV_DIR) && mkdir -p $(SDK_COV_DIR)
	for f in $(SDK_SRCS); do \
	    $(CC) -std=c99 -O0 -g --coverage $(SDK_INC) -c -o $(SDK_COV_DIR)/$$(basename $$f .c).o $$f || exit 1; \
	done
	$(CC) $(CFLAGS_C11) -O0 $(SDK_INC) -Itests/unit $(shell $(PKG) --cflags cmocka) \
	    -c -o $(SDK_COV_DIR)/test_sdk.o $(SDK_DIR)/tests/test_sdk.c
	$(CC) --coverage -o $(SDK_COV_DIR)/test_sdk $(SDK_COV_DIR)/*.o $(VECTORS_OBJ) $(CMOCKA_LIBS)
	$(SDK_COV_DIR)/test_sdk > $(SDK_COV_DIR)/test.log 2>&1 || (cat $(SDK_COV_DIR)/test.log; exit 1)
	lcov -q --rc lcov_branch_coverage=1 -c -d $(SDK_COV_DIR) -b $(CURDIR) -o $(SDK_COV_DIR)/sdk.info
	@python3 $(SDK_DIR)/tools/coverage_report.py $(SDK_COV_DIR)/sdk.info --min $(SDK_COVERAGE_MIN)

# ---- Install ----------------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=...]: the headers (ddns_sdk.h and
# one per optional module), libddns_sdk.a
# and the pkg-config file ddns_sdk.pc.
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
SDK_VERSION := $(shell sed -n 's/^\#define DDNS_SDK_VERSION "\(.*\)"/\1/p' $(SDK_DIR)/include/ddns_sdk.h)

.PHONY: install
install: $(SDK_LIB)
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 $(SDK_DIR)/include/*.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(SDK_LIB) $(DESTDIR)$(LIBDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(SDK_VERSION)|' $(SDK_DIR)/ddns_sdk.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/ddns_sdk.pc
	chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/ddns_sdk.pc

# ---- The README example, built as firmware would ------------------------------
# make sdk-example: installs the SDK into a staging directory, builds
# examples/example_loop.c against it through pkg-config and runs it against
# the scripted gateway of examples/fake_platform.c; the same again as a
# static 32-bit x86 program straight from the sources, run natively where
# the kernel can and under qemu-i386 where it cannot (tools/run-32bit says
# which, or why it skipped); and checks that README.md shows example_loop.c
# as it is. Part of make test-unit.
SDK_STAGE := $(abspath $(BUILD))/sdk-stage
SDK_EX    := $(SDK_DIR)/examples
SDK_EX_FLAGS := -std=c99 -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Werror -O2

.PHONY: sdk-example
sdk-example: $(SDK_LIB)
	@rm -rf $(SDK_STAGE)
	@$(MAKE) --no-print-directory BUILD=$(BUILD) DESTDIR=$(SDK_STAGE) PREFIX=/usr install > /dev/null
	PKG_CONFIG_SYSROOT_DIR=$(SDK_STAGE) PKG_CONFIG_LIBDIR=$(SDK_STAGE)/usr/lib/pkgconfig \
	    sh -c '$(CC) $(SDK_EX_FLAGS) $(EXTRA_CFLAGS) -I$(SDK_EX) $$(pkg-config --cflags ddns_sdk) \
	    -o $(BUILD)/sdk-example $(SDK_EX)/example_loop.c $(SDK_EX)/fake_platform.c \
	    $$(pkg-config --libs ddns_sdk) $(EXTRA_LDFLAGS)'
	$(BUILD)/sdk-example
	@$(SDK_DIR)/tools/run-32bit $(SKIP_DIR)/sdk-example-32 $(BUILD)/sdk-32 "$(CC)" \
	    "$(SDK_EX_FLAGS) $(SDK_INC) -I$(SDK_EX)" -- \
	    $(SDK_EX)/example_loop.c $(SDK_EX)/fake_platform.c $(SDK_SRCS)
	@python3 -c 'import sys; ex = open(sys.argv[1]).read(); readme = open(sys.argv[2]).read(); \
	    sys.exit(0 if "```c\n" + ex + "```" in readme else "README.md does not show " + sys.argv[1] + " as it is")' \
	    $(SDK_EX)/example_loop.c $(SDK_DIR)/README.md

test-unit: sdk-example

# ---- Warning-free on gcc and clang, 32- and 64-bit ------------------------------
# make sdk-warnings: every SDK source with -Wall -Wextra -Wpedantic
# -Wconversion -Wsign-conversion -Wshadow -Werror, for gcc and clang, -m32
# and -m64, at -O0, -O2, -Os and -O1 with the sanitizers. Part of make
# test-unit.
SDK_WARN_FLAGS := -std=c99 -pedantic -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion \
                  -Wshadow -Werror

# A word size the compiler cannot build for here (-m32 and -m64 are x86
# options; gcc-multilib exists for amd64 only) is skipped with its reason.
.PHONY: sdk-warnings
sdk-warnings:
	@mkdir -p $(BUILD)/sdk-warnings $(SKIP_DIR); rm -f $(SKIP_DIR)/sdk-warnings; n=0; skipped=""; \
	echo 'int sdk_warnings_probe;' > $(BUILD)/sdk-warnings/probe.c; \
	for cc in gcc clang; do for m in -m32 -m64; do \
	    if ! $$cc $$m -c -o $(BUILD)/sdk-warnings/w.o $(BUILD)/sdk-warnings/probe.c 2>/dev/null; then \
	        skipped="$$skipped $$cc $$m"; continue; fi; \
	    for o in -O0 -O2 -Os "-O1 -fsanitize=address,undefined"; do for f in $(SDK_SRCS); do \
	        $$cc $$m $$o $(SDK_WARN_FLAGS) $(SDK_INC) -c -o $(BUILD)/sdk-warnings/w.o $$f || \
	            { echo "sdk-warnings: $$cc $$m $$o $$f"; exit 1; }; n=$$((n+1)); \
	done; done; done; done; \
	if [ -n "$$skipped" ]; then \
	    echo "cannot compile for$$skipped on this machine" > $(SKIP_DIR)/sdk-warnings; \
	    echo "sdk-warnings: SKIPPED$$skipped: this compiler cannot build for that word size here"; fi; \
	echo "sdk-warnings: $$n compilations (gcc, clang; -m32, -m64; -O0, -O2, -Os, sanitizers) without a warning"

test-unit: sdk-warnings
