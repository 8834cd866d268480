# Development build of lws. `luarocks make` uses the rockspec instead.
#   make            build build/lws/core.so (runs from the checkout)
#   make test       install what is missing, build, lint, run every spec
#   make lint       luacheck on lua/ spec/ examples/ bench/, cppcheck on csrc/
#   make demo       run the demos
#   make asan       the spec suite against an ASan+UBSan build
#   make valgrind   the spec suite under valgrind
#                   (check, asan, valgrind: JOBS=2 runs two spec files at a time)
#   make rock       luarocks make into a temporary tree and require it
#   make soak       30 minutes of 1,000 churning clients (MINUTES=2 for CI's run)

LUA      ?= lua5.4
LUA_INC  ?= $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
# libev has no pkg-config file on Debian: the default libev loop (evloop.c)
LWS_LIBS ?= $(shell pkg-config --libs libwebsockets hiredis openssl zlib 2>/dev/null || echo -lwebsockets -lhiredis -lssl -lcrypto -lz) -lev -lcrypt
CC       ?= cc
WARN      = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS   ?= -O2 -g
ALL_CFLAGS = $(CFLAGS) $(WARN) -std=gnu11 -fPIC -fvisibility=hidden $(LUA_INC)
SRCS      = $(wildcard csrc/*.c)
HDRS      = $(wildcard csrc/*.h)
BUSTED    = $(LUA) /usr/bin/busted
SPECS    ?= spec
# JOBS=2 (CI): check, asan and valgrind run the spec files two at a time
# (.ci/shards; SPECS is then every spec file)
JOBS     ?= 1
ifeq ($(JOBS),1)
spec_run = $(1) $(SPECS)
else
spec_run = ./.ci/shards $(JOBS) $(1)
endif

.PHONY: all build test check lint deps demo asan valgrind rock bench soak fuzz clean

all: build

build: build/lws/core.so

build/lws/core.so: $(SRCS) $(HDRS) Makefile
	@mkdir -p build/lws
	$(CC) $(ALL_CFLAGS) -shared -o $@ $(SRCS) $(LWS_LIBS)

# Everything a fresh Debian 12 machine needs (apt + npm), idempotent.
deps:
	@./.ci/deps

test: deps build lint
	@$(MAKE) --no-print-directory check

# luacheck (.luacheckrc) on the Lua, cppcheck's warning/portability/
# performance checks on the C; both must be clean
lint:
	@luacheck -q --no-color lua spec examples bench/*.lua
	@cppcheck --enable=warning,portability,performance --inline-suppr --error-exitcode=1 -q \
	  $(LUA_INC) --suppress=missingIncludeSystem --suppress=toomanyconfigs csrc

# The spec suite against the current build (no installs).
check: build
	@$(call spec_run,$(BUSTED))

demo: deps build
	@./examples/run-demos $(if $(HOST),--host $(HOST))

build-asan/lws/core.so: $(SRCS) $(HDRS) Makefile
	@mkdir -p build-asan/lws
	$(CC) $(ALL_CFLAGS) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	  -fno-sanitize-recover=undefined -shared -o $@ $(SRCS) $(LWS_LIBS)

# lua5.4 itself is not instrumented: preload the ASan runtime.
asan: build build-asan/lws/core.so
	@$(call spec_run,env LWS_BUILD_DIR=build-asan \
	 LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23 \
	 LSAN_OPTIONS=suppressions=$(CURDIR)/.ci/lsan.supp:print_suppressions=0 \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 LWS_TEST_SLOW=2 $(BUSTED))

valgrind: build
	@$(call spec_run,env LWS_TEST_SLOW=10 LWS_VALGRIND=1 valgrind --quiet --error-exitcode=99 \
	  --leak-check=full --errors-for-leak-kinds=definite \
	  --suppressions=$(CURDIR)/.ci/valgrind.supp \
	  --trace-children=no $(BUSTED))

rock:
	@./.ci/rock-check

bench: build
	@$(MAKE) --no-print-directory -C bench
	@bench/run

MINUTES ?= 30
soak: build
	@bench/soak/run --minutes $(MINUTES)

fuzz:
	@./.ci/fuzz

clean:
	rm -rf build build-asan
