# Top-level build of the DDNS backend.
#
#   make              build everything into build/ (programs in build/bin)
#   make run          start PostgreSQL, Knot DNS and the gateway locally with a demo device
#   make test         unit tests, then the integration tests against real servers
#   make test-unit    C unit tests only
#   make test-integration  pytest suite only (builds first)
#   make test-asan    the same unit and integration tests with every program
#                     built with AddressSanitizer + UndefinedBehaviorSanitizer
#                     (into build/asan)
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
PYTEST   ?= /usr/bin/python3 -m pytest

.PHONY: all test test-unit test-integration test-asan run clean deps
all:

include common/common.mk
include firmware-sdk/sdk.mk
include gateway/gateway.mk
include provisioning/provisioning.mk
include bench/bench.mk
include tests/unit/unit.mk

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_C11) $(CPPFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

test: test-unit test-integration

test-integration: all
	DDNS_BIN=$(CURDIR)/$(BIN) $(PYTEST) -q tests/integration

SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
test-asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -g" EXTRA_CFLAGS="$(SAN_FLAGS)" \
	    EXTRA_LDFLAGS="$(SAN_FLAGS)" all test-unit
	DDNS_BIN=$(CURDIR)/build/asan/bin DDNS_SANITIZED=1 $(PYTEST) -q tests/integration

deps:
	scripts/install-deps

# make run installs missing Debian packages first, then builds and starts.
run:
	scripts/install-deps
	$(MAKE) all
	scripts/run-demo

clean:
	rm -rf $(BUILD)
