# bench/: the benchmark programs (C11, libevent + OpenSSL, jansson).
#   ddns-load   load generator: signs with the firmware SDK (libddns_sdk.a)
#   ddns-hello  baseline HTTP/HTTPS hello server, with the gateway's TLS
#               policy (gateway/src/internet/gw_tls.c)
# Built into $(BIN) by `make all`, so `make BUILD=build/release OPT=-O2 all`
# gives release builds next to the default one. The benchmark harness that
# runs them is not part of this fragment.
BENCH_PKGS     := libevent_openssl libevent libssl libcrypto jansson
BENCH_CFLAGS   = $(shell $(PKG) --cflags $(BENCH_PKGS))
BENCH_LIBS     = $(shell $(PKG) --libs $(BENCH_PKGS)) -lpthread -lm
LOAD_LIB_SRCS  := bench/loadgen/ld_hist.c bench/loadgen/ld_devices.c bench/loadgen/ld_work.c \
                  bench/loadgen/ld_run.c
LOAD_LIB_OBJS  := $(LOAD_LIB_SRCS:%.c=$(BUILD)/%.o)
LOAD_OBJS      := $(BUILD)/bench/loadgen/ddns_load.o $(LOAD_LIB_OBJS)
HELLO_OBJS     := $(BUILD)/bench/hello/ddns_hello.o $(BUILD)/gateway/src/internet/gw_tls.o $(COMMON_OBJS)

$(BUILD)/bench/%.o: CPPFLAGS += $(SDK_INC) -Ibench/loadgen $(BENCH_CFLAGS)
$(BUILD)/bench/%.o: CFLAGS_C11 += -Wconversion

$(BIN)/ddns-load: $(LOAD_OBJS) $(SDK_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(BENCH_LIBS)

$(BIN)/ddns-hello: $(HELLO_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(BENCH_LIBS)

# Unit tests: histogram accuracy, credentials file checks, request bytes
# and answer classification of every workload.
$(BUILD)/tests/test_load: $(BUILD)/bench/tests/test_load.o $(LOAD_LIB_OBJS) $(SDK_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(BENCH_LIBS)

$(BUILD)/bench/tests/%.o: CPPFLAGS += $(shell $(PKG) --cflags cmocka)

UNIT_TESTS += $(BUILD)/tests/test_load
all: $(BIN)/ddns-load $(BIN)/ddns-hello
