# isclua: a Lua 5.4 host with a native module for SailPoint ISC.
VERSION := 0.1.0
BUILD   ?= build
CC      ?= cc
LUA     ?= lua5.4

PKGS    := lua5.4 libcurl libedit
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
OPT     ?= -O2 -g
CFLAGS  += $(OPT) -std=c11 -Wall -Wextra -Werror -fPIC -D_GNU_SOURCE \
           -DISCLUA_VERSION='"$(VERSION)"' $(PKG_CFLAGS) -Isrc/core -Isrc/sim -Isrc/host $(SANITIZE)
LDFLAGS += $(SANITIZE)
HOST_LIBS := -llua5.4 -lcurl -ledit -lpthread -lm
# The shared module takes Lua's symbols from whichever interpreter loads it.
MOD_LIBS  := -lcurl -lpthread -lm

CORE_SRC := $(sort $(wildcard src/core/*.c))
SIM_SRC  := $(sort $(wildcard src/sim/*.c))
HOST_SRC := $(sort $(wildcard src/host/*.c))
LUA_SRC  := $(sort $(shell find lua -name '*.lua'))
CORE_OBJ := $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
SIM_OBJ  := $(SIM_SRC:src/%.c=$(BUILD)/obj/%.o)
HOST_OBJ := $(HOST_SRC:src/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/embedded.o
HEADERS  := $(wildcard src/*/*.h)

PREFIX  ?= /usr/local
LUA_SHARE := $(PREFIX)/share/lua/5.4
LUA_LIB   := $(PREFIX)/lib/lua/5.4

.PHONY: all bootstrap demo test asan fuzz fuzz-targets bench valgrind install clean
all: $(BUILD)/isclua $(BUILD)/isc/core.so $(BUILD)/isc/sim/server.so

bootstrap:
	@scripts/bootstrap

$(BUILD)/obj/%.o: src/%.c $(HEADERS) | bootstrap
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/embedded.c: scripts/embed.lua $(LUA_SRC) | bootstrap
	@mkdir -p $(@D)
	$(LUA) scripts/embed.lua $(LUA_SRC) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/embedded.o: $(BUILD)/embedded.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Wno-overlength-strings -c -o $@ $<

$(BUILD)/isclua: $(CORE_OBJ) $(SIM_OBJ) $(HOST_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LIBS)

$(BUILD)/isc/core.so: $(CORE_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -shared -o $@ $^ $(MOD_LIBS)

# The simulator's server (src/sim/), a module of its own so that isc.core
# does not carry it. It uses isc.core's functions and signal state from the
# core.so beside it (found through the rpath, before LD_LIBRARY_PATH): the
# dynamic linker knows it for the file Lua loaded, so both share one copy.
$(BUILD)/isc/sim/server.so: $(SIM_OBJ) $(BUILD)/isc/core.so
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -shared -o $@ $(SIM_OBJ) -L$(BUILD)/isc -l:core.so \
	  -Wl,-rpath,'$$ORIGIN/..' -Wl,--disable-new-dtags -lpthread -lm

demo: bootstrap all
	$(BUILD)/isclua --sim examples/demo.lua

test: bootstrap all
	@scripts/run-specs $(BUILD)

# The same specs, on a build instrumented with ASan and UBSan.
asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT='-O1 -g' \
	  SANITIZE='-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined' all
	@ISCLUA_SANITIZED=1 scripts/run-specs build-asan

# libFuzzer targets (fuzz/*_fuzz.c) built by clang with ASan and UBSan, each
# run for FUZZ_SECONDS from its seeds in fuzz/corpus/.
FUZZ_SECONDS ?= 20
FUZZ_BIN := $(patsubst fuzz/%_fuzz.c,$(BUILD)/fuzz/%,$(wildcard fuzz/*_fuzz.c))
fuzz:
	@scripts/bootstrap fuzz
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang OPT='-O1 -g' \
	  SANITIZE='-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined' fuzz-targets
	@scripts/fuzz build-fuzz $(FUZZ_SECONDS)

fuzz-targets: $(FUZZ_BIN)

$(BUILD)/fuzz/%: fuzz/%_fuzz.c fuzz/fuzz.c fuzz/fuzz.h $(CORE_OBJ) $(SIM_OBJ)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DISC_LUA_DIR='"$(CURDIR)/lua"' -fsanitize=fuzzer $(LDFLAGS) -o $@ \
	  $< fuzz/fuzz.c $(CORE_OBJ) $(SIM_OBJ) -llua5.4 $(MOD_LIBS)

valgrind: bootstrap all
	@scripts/bootstrap valgrind
	@scripts/valgrind-check $(BUILD)

bench: bootstrap all
	@scripts/bench $(BUILD)

# The binary carries its Lua sources; the module and its Lua files are for
# other Lua 5.4 programs (stock lua5.4 finds them on its default paths).
install: all
	install -D -m 755 $(BUILD)/isclua $(DESTDIR)$(PREFIX)/bin/isclua
	install -D -m 644 $(BUILD)/isc/core.so $(DESTDIR)$(LUA_LIB)/isc/core.so
	install -D -m 644 $(BUILD)/isc/sim/server.so $(DESTDIR)$(LUA_LIB)/isc/sim/server.so
	cd lua && find isc -name '*.lua' -exec install -D -m 644 {} $(DESTDIR)$(LUA_SHARE)/{} \;

clean:
	rm -rf build build-asan build-fuzz
