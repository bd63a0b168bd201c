# gateway/: the ddns-gateway daemon (HTTPS update endpoint, PostgreSQL pool,
# RFC 2136 publisher). C11; libevent + bufferevent_openssl, OpenSSL 3,
# libpq, ldns, libinih. gateway/src/ has one folder per trust boundary
# (internet, secrets, database, dns, operations, process, and core below
# them all; docs/ARCHITECTURE.md), each on the include path.
GW_PKGS      := libevent_openssl libevent_pthreads libevent libssl libcrypto libpq ldns inih jansson
GW_CFLAGS    = $(shell $(PKG) --cflags $(GW_PKGS))
GW_LIBS      = $(shell $(PKG) --libs $(GW_PKGS)) -lpthread
GW_SRCS      := $(sort $(wildcard gateway/src/*/*.c))
GW_INC       := $(addprefix -I,$(sort $(patsubst %/,%,$(dir $(GW_SRCS)))))
GW_OBJS      := $(GW_SRCS:%.c=$(BUILD)/%.o)
# Everything but main: linked into the unit tests too.
GW_LIB_OBJS  := $(filter-out $(BUILD)/gateway/src/process/gw_main.o,$(GW_OBJS))
GW_TEST_SRCS := $(sort $(wildcard gateway/tests/*.c))
CPPFLAGS     += $(GW_INC)

$(BUILD)/gateway/%.o: CPPFLAGS += $(GW_CFLAGS)

# The web console's static files (gateway/console/), served at /console/ on
# the admin listener from [admin] console_dir, whose default is where
# `make install` puts them.
DATADIR        ?= $(PREFIX)/share
GW_CONSOLE_DIR ?= $(DATADIR)/ddns/console
GW_CONSOLE_FILES := $(sort $(wildcard gateway/console/*.*))
$(BUILD)/gateway/src/core/gw_config.o: CPPFLAGS += -DGW_CONSOLE_DIR_DEFAULT='"$(GW_CONSOLE_DIR)"'

.PHONY: gw-install-console
gw-install-console:
	install -d $(DESTDIR)$(GW_CONSOLE_DIR)
	install -m 644 $(GW_CONSOLE_FILES) $(DESTDIR)$(GW_CONSOLE_DIR)/
install: gw-install-console

$(BIN)/ddns-gateway: $(GW_OBJS) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(GW_LIBS)

# Unit tests, one cmocka program per gateway/tests/test_*.c: test_gateway
# (gw_auth against docs/vectors, the configuration parser, the parsers and
# limits), test_outbox (coalescing, superseding, the send window),
# test_adminapi (the device search's statement, gw_sql, the input forms).
GW_TEST_BINS := $(GW_TEST_SRCS:gateway/tests/%.c=$(BUILD)/tests/%)
$(GW_TEST_BINS): $(BUILD)/tests/%: $(BUILD)/gateway/tests/%.o $(GW_LIB_OBJS) \
		$(BUILD)/tests/unit/vectors.o $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell $(PKG) --libs cmocka) $(GW_LIBS)

UNIT_TESTS += $(GW_TEST_BINS)
all: $(BIN)/ddns-gateway

# ---- Fuzzing (clang, libFuzzer, ASan + UBSan) -------------------------------
# fuzz_proxy (PROXY v1/v2 header parser), fuzz_gw_request (gw_auth_verify:
# Authorization value, clock window, signature, body), fuzz_route (the
# checks before routing: target length, query parameters, methods),
# fuzz_dyndns (the dyndns2 query and Basic credential parsers of
# gw_dynparse and the User-Agent policy of gw_policy), fuzz_http (raw
# connection bytes through evhttp with the gateway's limits, routing and
# the endpoints' parsers), fuzz_config (the configuration file),
# fuzz_csv (ddns-provision's CSV input) and fuzz_dns (what a DNS server
# sends back on the publisher's connection), built with clang.
#   make gw-fuzz-smoke  each target for GW_FUZZ_RUNS inputs from the seed
#                       corpus gateway/fuzz/corpus/* (part of make test-unit)
#   make fuzz           also runs them for FUZZ_TIME seconds each
GW_FUZZ_FLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
                 -fno-sanitize-recover=all -Wall -Wextra -Werror $(GW_INC) -Icommon $(COMMON_P11_CFLAGS)
GW_FUZZ_RUNS  ?= 200000
GW_FUZZERS    := $(BUILD)/fuzz/fuzz_proxy $(BUILD)/fuzz/fuzz_gw_request $(BUILD)/fuzz/fuzz_route \
                 $(BUILD)/fuzz/fuzz_dyndns $(BUILD)/fuzz/fuzz_http $(BUILD)/fuzz/fuzz_config \
                 $(BUILD)/fuzz/fuzz_csv $(BUILD)/fuzz/fuzz_dns
GW_DYN_SRCS   := gateway/src/internet/gw_dynparse.c gateway/src/internet/gw_policy.c common/cmn_mac.c common/cmn_key.c common/cmn_p11.c common/cmn_secmem.c \
                 common/cmn_text.c

$(BUILD)/fuzz/fuzz_dyndns: gateway/fuzz/fuzz_dyndns.c $(GW_DYN_SRCS) $(wildcard gateway/src/internet/gw_dynparse.h gateway/src/internet/gw_policy.h common/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(GW_FUZZ_FLAGS) -o $@ $< $(GW_DYN_SRCS) $(shell $(PKG) --libs libcrypto)

$(BUILD)/fuzz/fuzz_proxy: gateway/fuzz/fuzz_proxy.c gateway/src/internet/gw_proxy.c gateway/src/internet/gw_proxy.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(GW_FUZZ_FLAGS) -o $@ gateway/fuzz/fuzz_proxy.c gateway/src/internet/gw_proxy.c

$(BUILD)/fuzz/fuzz_route: gateway/fuzz/fuzz_route.c gateway/src/internet/gw_route.c gateway/src/internet/gw_route.h gateway/src/core/gw_config.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(GW_FUZZ_FLAGS) -o $@ gateway/fuzz/fuzz_route.c gateway/src/internet/gw_route.c

$(BUILD)/fuzz/fuzz_gw_request: gateway/fuzz/fuzz_request.c gateway/src/secrets/gw_auth.c gateway/src/secrets/gw_auth.h $(COMMON_SRCS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(GW_FUZZ_FLAGS) -o $@ gateway/fuzz/fuzz_request.c gateway/src/secrets/gw_auth.c \
	    $(COMMON_SRCS) $(shell $(PKG) --libs libcrypto)

# fuzz_http: a whole connection's bytes through libevent's evhttp with the
# gateway's limits, the checks before routing and the endpoints' parsers.
GW_HTTP_SRCS  := gateway/src/internet/gw_route.c gateway/src/secrets/gw_auth.c gateway/src/internet/gw_dynparse.c \
                 gateway/src/internet/gw_policy.c $(COMMON_SRCS)
$(BUILD)/fuzz/fuzz_http: gateway/fuzz/fuzz_http.c $(GW_HTTP_SRCS) $(wildcard gateway/src/*/*.h common/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(GW_FUZZ_FLAGS) -o $@ $< $(GW_HTTP_SRCS) $(shell $(PKG) --libs libevent libcrypto)

# fuzz_config: the configuration file parser (gw_config over inih).
GW_CONF_SRCS  := gateway/src/core/gw_config.c gateway/src/core/gw_cvalue.c gateway/src/core/gw_addr.c gateway/src/core/gw_log.c gateway/src/core/gw_err.c \
                 $(COMMON_SRCS)
$(BUILD)/fuzz/fuzz_config: gateway/fuzz/fuzz_config.c $(GW_CONF_SRCS) $(wildcard gateway/src/*/*.h common/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(GW_FUZZ_FLAGS) -o $@ $< $(GW_CONF_SRCS) $(shell $(PKG) --libs inih jansson libevent libcrypto) -lpthread

# fuzz_dns: a DNS server's bytes on a loopback connection of gw_dns.
$(BUILD)/fuzz/fuzz_dns: gateway/fuzz/fuzz_dns.c gateway/src/dns/gw_dns.c gateway/src/core/gw_clock.c \
		$(wildcard gateway/src/*/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(GW_FUZZ_FLAGS) -o $@ $< gateway/src/dns/gw_dns.c gateway/src/core/gw_clock.c \
	    $(shell $(PKG) --libs ldns libcrypto)

# fuzz_csv: ddns-provision's CSV input (prov_csv, prov_batch).
PROV_CSV_SRCS := provisioning/src/prov_batch.c provisioning/src/prov_csv.c \
                 provisioning/src/prov_cred.c provisioning/src/prov_record.c $(COMMON_SRCS)
$(BUILD)/fuzz/fuzz_csv: provisioning/fuzz/fuzz_csv.c $(PROV_CSV_SRCS) $(wildcard provisioning/src/*.h common/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(GW_FUZZ_FLAGS) -Iprovisioning/src -o $@ $< $(PROV_CSV_SRCS) \
	    $(shell $(PKG) --libs jansson libcrypto)

# The seed corpus of each fuzzer; fewer runs for fuzz_http, whose every
# input is a loopback connection.
gw_fuzz_seeds = case $$name in fuzz_proxy) seeds=gateway/fuzz/corpus/proxy;; \
    fuzz_route) seeds=gateway/fuzz/corpus/route;; fuzz_dyndns) seeds=gateway/fuzz/corpus/dyndns;; \
    fuzz_http) seeds=gateway/fuzz/corpus/http;; fuzz_config) seeds=gateway/fuzz/corpus/config;; \
    fuzz_csv) seeds=provisioning/fuzz/corpus/csv;; fuzz_dns) seeds=gateway/fuzz/corpus/dns;; \
    *) seeds=gateway/fuzz/corpus/request;; esac; \
    runs=$(GW_FUZZ_RUNS); case $$name in fuzz_http|fuzz_dns) runs=$(GW_HTTP_FUZZ_RUNS);; \
    fuzz_config|fuzz_csv) runs=$(GW_FILE_FUZZ_RUNS);; esac
GW_HTTP_FUZZ_RUNS ?= 20000
GW_FILE_FUZZ_RUNS ?= 50000

.PHONY: gw-fuzz-smoke gw-fuzz
gw-fuzz-smoke: $(GW_FUZZERS)
	@for f in $(GW_FUZZERS); do \
	    name=$$(basename $$f); $(gw_fuzz_seeds); \
	    work=$(BUILD)/fuzz/smoke-$$name; rm -rf $$work; mkdir -p $$work; \
	    if $(SAN_RUN) $$f -runs=$$runs -seed=1 -artifact_prefix=$(BUILD)/fuzz/ $$work $$seeds > $(BUILD)/fuzz/$$name.log 2>&1; then \
	        echo "$$name: $$runs inputs, no failure ($$(grep -o 'cov: [0-9]*' $(BUILD)/fuzz/$$name.log | tail -1))"; \
	    else tail -40 $(BUILD)/fuzz/$$name.log; echo "$$name: FAILED (log: $(BUILD)/fuzz/$$name.log)"; exit 1; fi; \
	done

gw-fuzz: $(GW_FUZZERS)
	@for f in $(GW_FUZZERS); do \
	    name=$$(basename $$f); $(gw_fuzz_seeds); \
	    corpus=$(BUILD)/fuzz/corpus-$$name; mkdir -p $$corpus; \
	    echo "$$name: $(FUZZ_TIME) s, corpus $$corpus"; \
	    $(SAN_RUN) $$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/ $$corpus $$seeds || exit 1; \
	done

test-unit: gw-fuzz-smoke gw-check-layers

# The include rule of gateway/src/: a folder includes only from itself and
# from the folders below it (gateway/tools/check-layers, docs/ARCHITECTURE.md).
.PHONY: gw-check-layers
gw-check-layers:
	@gateway/tools/check-layers gateway/src
fuzz: gw-fuzz
