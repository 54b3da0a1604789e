# isclua: a Lua 5.4 host with a native module for SailPoint ISC.
VERSION := 0.1.0
BUILD   ?= build
CC      ?= cc
LUA     ?= lua5.4

PKGS    := lua5.4 libcurl libedit
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# LUA_INCDIR: Lua's headers, when not where pkg-config says (luarocks passes it).
OPT     ?= -O2 -g
CFLAGS  += $(OPT) -std=c11 -Wall -Wextra -Werror -fPIC -D_GNU_SOURCE \
           -DISCLUA_VERSION='"$(VERSION)"' $(PKG_CFLAGS) $(if $(LUA_INCDIR),-I$(LUA_INCDIR)) \
           -Isrc/core -Isrc/sim -Isrc/host $(SANITIZE)
LDFLAGS += $(SANITIZE)
# Neither libcurl nor libedit is linked: curl_api.c and lineedit.c open them
# with dlopen (in glibc's libc since 2.34, so no -ldl) when a request or the
# prompt first needs them, sparing every other start-up their loading
# (libcurl alone brings thirty-odd libraries). PKGS keeps them for headers.
HOST_LIBS := -llua5.4 -lpthread -lm
# The shared module takes Lua's symbols from whichever interpreter loads it.
MOD_LIBS  := -lpthread -lm

CORE_SRC := $(sort $(wildcard src/core/*.c))
SIM_SRC  := $(sort $(wildcard src/sim/*.c))
HOST_SRC := $(sort $(wildcard src/host/*.c))
LUA_SRC  := $(sort $(shell find lua -name '*.lua'))
CORE_OBJ := $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
SIM_OBJ  := $(SIM_SRC:src/%.c=$(BUILD)/obj/%.o)
HOST_OBJ := $(HOST_SRC:src/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/embedded.o
HEADERS  := $(wildcard src/*/*.h)

PREFIX  ?= /usr/local
LUA_SHARE ?= $(PREFIX)/share/lua/5.4
LUA_LIB   ?= $(PREFIX)/lib/lua/5.4
MAN1      := $(PREFIX)/share/man/man1
BASH_COMPLETIONS := $(PREFIX)/share/bash-completion/completions
# The directories install may have made, deepest first: uninstall removes
# those it leaves empty.
INSTALL_DIRS := $(LUA_LIB)/isc/sim $(LUA_LIB)/isc $(LUA_LIB) $(PREFIX)/lib/lua $(PREFIX)/lib \
  $(LUA_SHARE)/isc/sim $(LUA_SHARE)/isc $(LUA_SHARE) $(PREFIX)/share/lua $(MAN1) $(PREFIX)/share/man \
  $(BASH_COMPLETIONS) $(PREFIX)/share/bash-completion $(PREFIX)/share $(PREFIX)/bin

# What --version says of the build: the day, and the commit when built from git.
BUILD_INFO := built $(shell date -u +%Y-%m-%d)$(shell git describe --tags --always --dirty 2>/dev/null | sed 's/^/ from git /')

# BOOTSTRAP= (empty) builds with whatever is installed, as luarocks does.
BOOTSTRAP ?= bootstrap

.PHONY: all modules bootstrap demo test asan fuzz fuzz-targets bench valgrind install install-modules uninstall clean
all: $(BUILD)/isclua modules
modules: $(BUILD)/isc/core.so $(BUILD)/isc/sim/server.so

bootstrap:
	@scripts/bootstrap

$(BUILD)/obj/%.o: src/%.c $(HEADERS) | $(BOOTSTRAP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/core/core.o: CFLAGS += -DISCLUA_BUILD='"$(BUILD_INFO)"'

$(BUILD)/embedded.c: scripts/embed.lua $(LUA_SRC) | $(BOOTSTRAP)
	@mkdir -p $(@D)
	$(LUA) scripts/embed.lua "$$($(LUA) -v)" $(LUA_SRC) > $@.tmp && mv $@.tmp $@

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
	@scripts/bootstrap bench
	@scripts/bench $(BUILD)

# The binary carries its Lua sources; the module and its Lua files are for
# other Lua 5.4 programs (stock lua5.4 finds them on its default paths).
install: all install-modules
	install -D -m 755 $(BUILD)/isclua $(DESTDIR)$(PREFIX)/bin/isclua
	install -D -m 644 man/isclua.1 $(DESTDIR)$(MAN1)/isclua.1
	install -D -m 644 completion/isclua.bash $(DESTDIR)$(BASH_COMPLETIONS)/isclua

# The module alone, for a stock Lua 5.4 (the rockspec's install step).
install-modules: modules
	install -D -m 644 $(BUILD)/isc/core.so $(DESTDIR)$(LUA_LIB)/isc/core.so
	install -D -m 644 $(BUILD)/isc/sim/server.so $(DESTDIR)$(LUA_LIB)/isc/sim/server.so
	cd lua && find isc -name '*.lua' -exec install -D -m 644 {} $(DESTDIR)$(LUA_SHARE)/{} \;

# Removes what install put, and the directories it leaves empty. The isc
# directories of the module paths are isclua's alone.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/isclua $(DESTDIR)$(MAN1)/isclua.1 $(DESTDIR)$(BASH_COMPLETIONS)/isclua
	rm -rf $(DESTDIR)$(LUA_LIB)/isc $(DESTDIR)$(LUA_SHARE)/isc
	for d in $(INSTALL_DIRS); do [ ! -d "$(DESTDIR)$$d" ] || rmdir --ignore-fail-on-non-empty "$(DESTDIR)$$d"; done

clean:
	rm -rf build build-asan build-fuzz build-rock
