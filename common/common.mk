# common/: code shared by the gateway, the provisioning tool and ddnsctl (MAC
# canonicalisation, master keys from files or a PKCS#11 token, secret
# derivation, admin tokens, text helpers). C11, OpenSSL; the PKCS#11 module
# named in a token URI is loaded with dlopen (cmn_p11), which needs only
# p11-kit's pkcs11.h at build time.
COMMON_SRCS := common/cmn_mac.c common/cmn_key.c common/cmn_p11.c common/cmn_secmem.c \
               common/cmn_token.c common/cmn_text.c common/cmn_io.c common/cmn_label.c
COMMON_OBJS := $(COMMON_SRCS:%.c=$(BUILD)/%.o)
COMMON_LIB  := $(BUILD)/lib/libddns_common.a
COMMON_P11_CFLAGS = $(shell $(PKG) --cflags p11-kit-1)
CPPFLAGS    += -Icommon

$(BUILD)/common/cmn_p11.o $(BUILD)/common/tests/test_p11.o: CPPFLAGS += $(COMMON_P11_CFLAGS)

$(COMMON_LIB): $(COMMON_OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

# Unit tests of common/ against docs/vectors (mac and derive records).
$(BUILD)/tests/test_common: $(BUILD)/common/tests/test_common.o $(BUILD)/tests/unit/vectors.o $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell $(PKG) --libs cmocka libcrypto)

# Master keys in a PKCS#11 token: SoftHSM2 in a temporary directory (token
# URIs, HMAC and derivation through the token against docs/vectors, keygen,
# the key set's rules, threads, fork). Skipped, with the reason left in
# $(SKIP_DIR), where SoftHSM2 is missing.
$(BUILD)/tests/test_p11: $(BUILD)/common/tests/test_p11.o $(BUILD)/tests/unit/vectors.o $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell $(PKG) --libs cmocka libcrypto) -lpthread
UNIT_TESTS += $(BUILD)/tests/test_common $(BUILD)/tests/test_p11
all: $(COMMON_LIB)
