# geocast — plain Makefile, no autotools.
#   make                         build bin/geocastd, bin/geocastctl into $(BUILD)
#   make check                   unit tests, fuzz-corpus replay, integration tests (prove)
#   make SANITIZER=address,undefined BUILD=build-asan check
#   make FUZZ=1 fuzz             libFuzzer targets (clang)
#   make install [PREFIX=/usr/local] [DESTDIR=]
#                                geocastd, geocastctl, man pages, systemd unit

BUILD     ?= build
CC        ?= cc
SANITIZER ?=
OPT       ?= -O2

PKGS      := yaml-0.1 libmaxminddb liburcu-qsbr libsystemd libfstrm
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wno-missing-field-initializers -fno-strict-aliasing -Isrc $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lpthread -lm

ifneq ($(SANITIZER),)
CFLAGS  += -fsanitize=$(SANITIZER) -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZER)
endif

LIB_SRC := $(sort $(wildcard src/common/*.c src/dns/*.c src/zone/*.c src/geo/*.c \
             src/policy/*.c src/conf/*.c src/server/*.c src/ctl/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB     := $(BUILD)/libgeocast.a

BINS    := $(BUILD)/bin/geocastd $(BUILD)/bin/geocastctl

UNIT_SRC  := $(sort $(wildcard tests/unit/*/test_*.c))
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)

FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
REPLAY_BINS := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/replay/%)
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/fuzzer/%)

BENCH_SRC  := $(sort $(wildcard bench/*.c))
BENCH_BINS := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

PREFIX    ?= /usr/local
SBINDIR   ?= $(PREFIX)/sbin
MANDIR    ?= $(PREFIX)/share/man
UNITDIR   ?= $(PREFIX)/lib/systemd/system

.PHONY: all check unit integration replay fuzz bench clean format install
all: $(BINS) $(UNIT_BINS) $(REPLAY_BINS) $(BENCH_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/geocastd: $(BUILD)/src/main/geocastd.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/bin/geocastctl: $(BUILD)/tools/geocastctl.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -MMD -MP -c $< -o $@

# Replay drivers: the libFuzzer targets linked with a main() that runs corpus files.
$(BUILD)/tests/replay/%: $(BUILD)/tests/fuzz/%.o $(BUILD)/tests/fuzz/replay_main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/fuzzer/%: tests/fuzz/%.c $(LIB_SRC)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Isrc $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined \
	    $< $(LIB_SRC) $(LDLIBS) -o $@

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

fuzz: $(FUZZ_BINS)

bench: $(BENCH_BINS)

unit: $(UNIT_BINS)
	prove -e '' $(UNIT_BINS)

check: all
	BUILD=$(BUILD) tests/run

# The unit names the binaries where this install puts them.
install: $(BINS)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BINS) $(DESTDIR)$(SBINDIR)/
	install -m 0644 man/geocastd.8 man/geocastctl.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 man/geocast.yaml.5 $(DESTDIR)$(MANDIR)/man5/
	sed 's|/usr/local/sbin/|$(SBINDIR)/|g' dist/geocast.service > $(DESTDIR)$(UNITDIR)/geocast.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/geocast.service

clean:
	rm -rf build build-*

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
