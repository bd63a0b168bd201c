# gateway/: the ddns-gateway daemon (HTTPS update endpoint, PostgreSQL pool,
# RFC 2136 publisher). C11; libevent + bufferevent_openssl, OpenSSL 3,
# libpq, ldns, libinih.
GW_PKGS      := libevent_openssl libevent libssl libcrypto libpq ldns inih
GW_CFLAGS    := $(shell $(PKG) --cflags $(GW_PKGS))
GW_LIBS      := $(shell $(PKG) --libs $(GW_PKGS)) -lpthread
GW_SRCS      := $(sort $(wildcard gateway/src/*.c))
GW_OBJS      := $(GW_SRCS:%.c=$(BUILD)/%.o)
# Everything but main: linked into the unit tests too.
GW_LIB_OBJS  := $(filter-out $(BUILD)/gateway/src/gw_main.o,$(GW_OBJS))
GW_TEST_SRCS := $(sort $(wildcard gateway/tests/*.c))
GW_TEST_OBJS := $(GW_TEST_SRCS:%.c=$(BUILD)/%.o)
CPPFLAGS     += -Igateway/src

$(BUILD)/gateway/%.o: CPPFLAGS += $(GW_CFLAGS)

$(BIN)/ddns-gateway: $(GW_OBJS) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(GW_LIBS)

# Unit tests: gw_auth against docs/vectors, the configuration parser.
$(BUILD)/tests/test_gateway: $(GW_TEST_OBJS) $(GW_LIB_OBJS) $(BUILD)/tests/unit/vectors.o $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell $(PKG) --libs cmocka) $(GW_LIBS)

UNIT_TESTS += $(BUILD)/tests/test_gateway
all: $(BIN)/ddns-gateway

# ---- Fuzzing (clang, libFuzzer, ASan + UBSan) -------------------------------
# fuzz_dyndns: the dyndns2 query and Basic credential parsers (gw_dynparse)
# and the User-Agent policy (gw_policy), built from their sources with clang.
#   make gw-fuzz-smoke  GW_FUZZ_RUNS inputs from the seed corpus (part of
#                       make test-unit)
#   make fuzz           also runs it for FUZZ_TIME seconds, keeping what it
#                       finds in $(BUILD)/fuzz/corpus-fuzz_dyndns
GW_FUZZ_RUNS  ?= 100000
GW_FUZZ_SRCS  := gateway/src/gw_dynparse.c gateway/src/gw_policy.c common/cmn_mac.c common/cmn_key.c
GW_FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
                 -fno-sanitize-recover=all -Wall -Wextra -Werror -Igateway/src -Icommon
GW_FUZZER     := $(BUILD)/fuzz/fuzz_dyndns
GW_FUZZ_SEEDS := gateway/fuzz/corpus/dyndns

$(GW_FUZZER): gateway/fuzz/fuzz_dyndns.c $(GW_FUZZ_SRCS) $(wildcard gateway/src/gw_dynparse.h gateway/src/gw_policy.h common/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(GW_FUZZ_FLAGS) -o $@ $< $(GW_FUZZ_SRCS) $(shell $(PKG) --libs libcrypto)

.PHONY: gw-fuzz-smoke gw-fuzz
gw-fuzz-smoke: $(GW_FUZZER)
	@work=$(BUILD)/fuzz/smoke-fuzz_dyndns; rm -rf $$work; mkdir -p $$work; \
	if $(GW_FUZZER) -runs=$(GW_FUZZ_RUNS) -seed=1 -artifact_prefix=$(BUILD)/fuzz/ $$work $(GW_FUZZ_SEEDS) \
	        > $(BUILD)/fuzz/fuzz_dyndns.log 2>&1; then \
	    echo "fuzz_dyndns: $(GW_FUZZ_RUNS) inputs, no failure ($$(grep -o 'cov: [0-9]*' $(BUILD)/fuzz/fuzz_dyndns.log | tail -1))"; \
	else tail -40 $(BUILD)/fuzz/fuzz_dyndns.log; echo "fuzz_dyndns: FAILED (log: $(BUILD)/fuzz/fuzz_dyndns.log)"; exit 1; fi

gw-fuzz: $(GW_FUZZER)
	@corpus=$(BUILD)/fuzz/corpus-fuzz_dyndns; mkdir -p $$corpus; \
	echo "fuzz_dyndns: $(FUZZ_TIME) s, corpus $$corpus"; \
	$(GW_FUZZER) -max_total_time=$(FUZZ_TIME) -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/ $$corpus $(GW_FUZZ_SEEDS)

fuzz: gw-fuzz
test-unit: gw-fuzz-smoke
