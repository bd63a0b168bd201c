# common/: code shared by the gateway, the provisioning tool and ddnsctl (MAC
# canonicalisation, master keys, secret derivation, admin tokens, text helpers).
# C11, OpenSSL.
COMMON_SRCS := common/cmn_mac.c common/cmn_key.c common/cmn_secmem.c common/cmn_token.c common/cmn_text.c
COMMON_OBJS := $(COMMON_SRCS:%.c=$(BUILD)/%.o)
COMMON_LIB  := $(BUILD)/lib/libddns_common.a
CPPFLAGS    += -Icommon

$(COMMON_LIB): $(COMMON_OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

# Unit tests of common/ against docs/vectors (mac and derive records).
$(BUILD)/tests/test_common: $(BUILD)/common/tests/test_common.o $(BUILD)/tests/unit/vectors.o $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell $(PKG) --libs cmocka libcrypto)
UNIT_TESTS += $(BUILD)/tests/test_common
all: $(COMMON_LIB)
