# AIOS — a readable build.
#   make            library (build/libaios.a, build/libaios.so) and the `aios` command
#   make test       unit + reference tests; ends with "N passed, N failed"
#   make asan       the same tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz       libFuzzer targets for a bounded time (FUZZ_SECONDS, default 20 each)
#   make bench      benchmarks against reference implementations (not tests)
#   make python     the Python package (python/, `import aios`) installed into .venv (or PYTHON=...)
# Knobs: CC=clang, BLAS=1 (OpenBLAS for large f32 GEMMs), O=build dir, V=1.
#
# Sources are discovered by directory: every src/**/*.c except src/cli/ goes into libaios,
# every tests/test_*.c is its own test program, every fuzz/fuzz_*.c a fuzz target.

CC      ?= cc
O       ?= build
PYTHON  ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

IS_CLANG:= $(shell $(CC) --version 2>/dev/null | grep -q clang && echo 1)
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter -Wvla
ifeq ($(IS_CLANG),1)
WARN    += -Wshadow
else
WARN    += -Wshadow=local -Wno-format-truncation
endif
OPT     ?= -O2
CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) -fPIC -fopenmp -Iinclude -Isrc $(EXTRA_CFLAGS)
LDLIBS  := -lzstd -lsnappy -lz -lpcre2-8 -lutf8proc -lcjson -lmicrohttpd -lm -lpthread
LDFLAGS += -fopenmp $(EXTRA_LDFLAGS)

# aios chat: line editing and history from libedit (Debian libedit-dev) when pkg-config finds it;
# without it chat reads plain lines (pipes always do)
ifneq ($(shell pkg-config --exists libedit 2>/dev/null && echo y),)
EDIT_CFLAGS := -DAIOS_HAVE_LIBEDIT $(shell pkg-config --cflags libedit)
EDIT_LIBS   := $(shell pkg-config --libs libedit)
endif

ifeq ($(BLAS),1)
CFLAGS  += -DAIOS_HAVE_BLAS
LDLIBS  += -lopenblas
endif

LIB_SRC  := $(sort $(shell find src -name '*.c' -not -path 'src/cli/*'))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
BENCH_SRC:= $(sort $(wildcard bench/bench_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(O)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(O)/obj/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(O)/tests/%)
BENCHES  := $(BENCH_SRC:bench/%.c=$(O)/bench/%)

.PHONY: all test asan fuzz bench clean features check-deps python
all: features $(O)/libaios.a $(O)/libaios.so $(O)/aios $(TESTS)

features:
	@printf 'aios build: CC=%s BLAS=%s OpenMP=yes codecs=zstd,snappy,gzip libedit=%s O=%s\n' "$(CC)" "$(if $(filter 1,$(BLAS)),yes,no)" "$(if $(EDIT_LIBS),yes,no)" "$(O)"

# Each object depends on the headers it includes (-MMD writes them beside the object, -MP keeps a
# deleted header from breaking the build): a header change rebuilds only what includes it.
$(O)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(if $(V),,@echo "  CC  $<";) $(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(O)/libaios.a: $(LIB_OBJ)
	@rm -f $@
	$(if $(V),,@echo "  AR  $@";) ar rcs $@ $^

$(O)/libaios.so: $(LIB_OBJ)
	$(if $(V),,@echo "  LD  $@";) $(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(O)/obj/src/cli/cmd_generate.o: CFLAGS += $(EDIT_CFLAGS)

$(O)/aios: $(CLI_OBJ) $(O)/libaios.a
	$(if $(V),,@echo "  LD  $@";) $(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(O)/libaios.a $(LDLIBS) $(EDIT_LIBS)

$(O)/tests/%: tests/%.c $(O)/libaios.a
	@mkdir -p $(dir $@) $(O)/obj/tests
	$(if $(V),,@echo "  CC  $<";) $(CC) $(CFLAGS) -MMD -MP -MT $@ -MF $(O)/obj/tests/$*.d -Itests -o $@ $< $(O)/libaios.a $(LDFLAGS) $(LDLIBS)

$(O)/bench/%: bench/%.c $(O)/libaios.a
	@mkdir -p $(dir $@) $(O)/obj/bench
	$(CC) $(CFLAGS) -MMD -MP -MT $@ -MF $(O)/obj/bench/$*.d -o $@ $< $(O)/libaios.a $(LDFLAGS) $(LDLIBS)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_SRC:tests/%.c=$(O)/obj/tests/%.d) $(BENCH_SRC:bench/%.c=$(O)/obj/bench/%.d)

test: all
	@O=$(O) PYTHON=$(PYTHON) tests/run.sh

# make test plus the learning tests that train on the real model for minutes each
# (test_train_skill: defaults learn a skill; test_evolve_loop: the whole evolution loop)
test-slow: all
	@O=$(O) PYTHON=$(PYTHON) AIOS_SLOW_TESTS=1 tests/run.sh

# Tests under ASan + UBSan (clang or gcc); Python reference tests are skipped here (they
# exercise the same code through the normal build).
asan:
	@$(MAKE) --no-print-directory O=build-asan OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined" all
	@O=build-asan PYTHON=$(PYTHON) AIOS_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run.sh

# clang's UBSan needs minutes and gigabytes on the unrolled SIMD kernels, which parse no input:
# the fuzz build instruments them with ASan and coverage only (gcc's `make asan` keeps UBSan).
build-fuzz/obj/src/kernels/cpu/%.o: override EXTRA_CFLAGS := -fsanitize=fuzzer-no-link -fsanitize=address

FUZZ_SECONDS ?= 20
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
fuzz:
	@$(MAKE) --no-print-directory O=build-fuzz CC=clang OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" EXTRA_LDFLAGS="$(FUZZ_SAN)" build-fuzz/libaios.a
	@set -e; for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer $(FUZZ_SAN) -fopenmp -Iinclude -Isrc \
	    -o build-fuzz/$$n $$f build-fuzz/libaios.a $(LDLIBS); \
	  mkdir -p build-fuzz/corpus-$$n; \
	  seeds=; [ -d fuzz/corpus/$$n ] && seeds=fuzz/corpus/$$n; \
	  AIOS_SHARED=$${AIOS_SHARED:-../shared} build-fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=0 build-fuzz/corpus-$$n $$seeds >build-fuzz/$$n.log 2>&1 || { tail -40 build-fuzz/$$n.log; exit 1; }; \
	  echo "  FUZZ $$n: $$(grep -o 'Done [0-9]* runs' build-fuzz/$$n.log | tail -1) in $(FUZZ_SECONDS)s, no crash"; done

bench: all $(BENCHES)
	@O=$(O) PYTHON=$(PYTHON) bench/run.sh

# pip builds a wheel whose build step runs `make build/libaios.so` here and carries the library
python:
	$(PYTHON) -m pip install ./python

clean:
	rm -rf build build-asan build-fuzz python/build python/aios.egg-info python/aios/libaios.so
