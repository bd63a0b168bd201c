# gateway/: the ddns-gateway daemon (HTTPS update endpoint, PostgreSQL pool,
# RFC 2136 publisher). C11; libevent + bufferevent_openssl, OpenSSL 3,
# libpq, ldns, libinih.
GW_PKGS      := libevent_openssl libevent libssl libcrypto libpq ldns inih jansson
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
