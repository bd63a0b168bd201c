# provisioning/: ddns-provision, the factory tool (C11, OpenSSL, libpq, jansson).
PROV_SRCS := provisioning/src/prov_cred.c provisioning/src/prov_db.c provisioning/src/prov_dbbatch.c \
             provisioning/src/prov_csv.c provisioning/src/prov_record.c \
             provisioning/src/prov_batch.c provisioning/src/prov_out.c \
             provisioning/src/prov_cli.c provisioning/src/prov_keys.c \
             provisioning/src/prov_batchcmd.c provisioning/src/prov_reissue.c
PROV_OBJS := $(PROV_SRCS:%.c=$(BUILD)/%.o)
PROV_LIBS = $(shell $(PKG) --libs libpq jansson libcrypto)

$(BIN)/ddns-provision: $(BUILD)/provisioning/src/prov_main.o $(PROV_OBJS) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PROV_LIBS)

$(BUILD)/tests/test_provision: $(BUILD)/provisioning/tests/test_provision.o $(PROV_OBJS) \
		$(BUILD)/tests/unit/vectors.o $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PROV_LIBS) $(shell $(PKG) --libs cmocka)

# Batch input, validation and output lines; the flash record against the
# vectors of provisioning/tests/gen-record-vectors.py.
$(BUILD)/tests/test_provision_batch: $(BUILD)/provisioning/tests/test_batch.o $(PROV_OBJS) \
		$(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PROV_LIBS) $(shell $(PKG) --libs cmocka)

$(BUILD)/tests/test_provision_record: $(BUILD)/provisioning/tests/test_record.o $(PROV_OBJS) \
		$(BUILD)/tests/unit/vectors.o $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PROV_LIBS) $(shell $(PKG) --libs cmocka)

$(BUILD)/provisioning/%.o: CPPFLAGS += -Iprovisioning/src $(shell $(PKG) --cflags libpq jansson)
UNIT_TESTS += $(BUILD)/tests/test_provision $(BUILD)/tests/test_provision_batch \
              $(BUILD)/tests/test_provision_record
all: $(BIN)/ddns-provision

# The fuzz target of the CSV input, provisioning/fuzz/fuzz_csv.c, is built
# and run with the gateway's fuzzers (gateway/gateway.mk: gw-fuzz-smoke in
# make test-unit, gw-fuzz in make fuzz).
