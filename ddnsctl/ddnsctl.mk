# ddnsctl/: the command-line client of the admin API (C11, libcurl, jansson,
# inih; libpq and OpenSSL for 'token ... --db', the first token).
CTL_VERSION := 1.0.0
CTL_SRCS := ddnsctl/src/ctl_http.c ddnsctl/src/ctl_table.c ddnsctl/src/ctl_tokendb.c \
            ddnsctl/src/ctl_cli.c ddnsctl/src/ctl_token.c ddnsctl/src/ctl_main.c
CTL_OBJS := $(CTL_SRCS:%.c=$(BUILD)/%.o)
CTL_PKGS := libcurl jansson inih libpq libcrypto
CTL_LIBS = $(shell $(PKG) --libs $(CTL_PKGS))

$(BUILD)/ddnsctl/%.o: CPPFLAGS += -Iddnsctl/src $(shell $(PKG) --cflags $(CTL_PKGS)) \
                                 -DCTL_VERSION='"$(CTL_VERSION)"'

$(BIN)/ddnsctl: $(CTL_OBJS) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CTL_LIBS)

all: $(BIN)/ddnsctl

# make install also installs ddnsctl into $(BINDIR) (PREFIX, DESTDIR).
BINDIR ?= $(PREFIX)/bin
.PHONY: install-ddnsctl
install: install-ddnsctl
install-ddnsctl: $(BIN)/ddnsctl
	install -d $(DESTDIR)$(BINDIR)
	install -m 755 $(BIN)/ddnsctl $(DESTDIR)$(BINDIR)/
