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

$(BUILD)/sdk/lib/%.o: $(SDK_DIR)/src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_C99) $(SDK_INC) -MMD -MP -c -o $@ $<

$(SDK_LIB): $(SDK_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/sdk/client/ddns_client.o: $(SDK_DIR)/client/ddns_client.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_C11) $(SDK_INC) $(shell $(PKG) --cflags $(SDK_CLIENT_PKGS)) -MMD -MP -c -o $@ $<

$(SDK_CLIENT): $(BUILD)/sdk/client/ddns_client.o $(SDK_LIB)
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
