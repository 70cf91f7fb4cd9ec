# forewarn -- one GNU Makefile, Redis style.
#
#   make                 build ./build/forewarn
#   make test            unit + end-to-end tests, then again under ASan+UBSan
#   make test-unit       unit tests only (current build flavour)
#   make test-e2e        end-to-end tests only (current build flavour)
#   make test-fuzz       replay the fuzz corpora and regressions (current build flavour)
#   make fuzz            run every fuzz harness for FUZZ_SECONDS (clang, libFuzzer)
#   make SANITIZER=address,undefined ...   sanitizer build in build/asan
#   make bench           benchmarks (see bench/README.md)
#   make V=1             show full command lines

PKGS := sqlite3 libmicrohttpd libcurl yaml-0.1 jansson libcrypto libpcre2-8 libpq libnats
PYTHON ?= /usr/bin/python3

ifeq ($(SANITIZER),)
BUILD := build
SANFLAGS :=
else
BUILD := build/asan
comma := ,
# GCC's -fsanitize=undefined leaves out float-cast-overflow (a double outside the
# integer it is cast to): asked for by name (docs/testing.md, chainsnap's findings).
SANFLAGS := -fsanitize=$(SANITIZER)$(if $(findstring undefined,$(SANITIZER)),$(comma)float-cast-overflow) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

CC ?= cc
OPT ?= -O2
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wstrict-prototypes -Wshadow \
	-g $(OPT) $(SANFLAGS) -MMD -MP -Isrc $(shell pkg-config --cflags $(PKGS)) $(CFLAGS)
# XGBoost (libxgboost-dev) ships a pkg-config file on Debian; the model module links it.
LDLIBS_ALL := $(shell pkg-config --libs $(PKGS)) $(shell pkg-config --libs xgboost) -lgomp -lpthread -lm $(LDLIBS)
LDFLAGS_ALL := $(SANFLAGS) $(LDFLAGS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRC := $(filter-out src/main.c,$(shell find src -name '*.c' | sort))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/builtin_telecom.o $(BUILD)/gen/builtin_templates.o \
	$(BUILD)/gen/builtin_playbooks.o \
	$(BUILD)/gen/builtin_support_lexicon.o $(BUILD)/gen/web_assets.o
TEMPLATES := $(shell find templates -name '*.tmpl' 2>/dev/null | sort)
UNIT_SRC := $(shell find tests/unit -name '*.c' | sort)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/%.o)

BIN := $(BUILD)/forewarn
UNIT := $(BUILD)/unit-tests

.PHONY: all test test-unit test-e2e test-fuzz test-asan bench fuzz fuzz-build clean install format

all: $(BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

# The built-in rule pack is compiled into the binary.
$(BUILD)/gen/builtin_telecom.c: rules/telecom.yaml scripts/embed.sh
	@mkdir -p $(dir $@)
	$(Q)scripts/embed.sh rules_builtin_telecom $< > $@

$(BUILD)/gen/builtin_telecom.o: $(BUILD)/gen/builtin_telecom.c
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

# And the built-in playbooks (docs/guidance.md).
$(BUILD)/gen/builtin_playbooks.c: playbooks/telecom.yaml scripts/embed.sh
	@mkdir -p $(dir $@)
	$(Q)scripts/embed.sh playbooks_builtin_telecom $< > $@

$(BUILD)/gen/builtin_playbooks.o: $(BUILD)/gen/builtin_playbooks.c
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

# So is the support-domain sentiment lexicon (VADER's own is read at run time).
$(BUILD)/gen/builtin_support_lexicon.c: lexicon/support.txt scripts/embed.sh
	@mkdir -p $(dir $@)
	$(Q)scripts/embed.sh sentiment_builtin_domain $< > $@

$(BUILD)/gen/builtin_support_lexicon.o: $(BUILD)/gen/builtin_support_lexicon.c
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

# The built-in message templates too.
$(BUILD)/gen/builtin_templates.c: $(TEMPLATES) scripts/embed-templates.sh
	@mkdir -p $(dir $@)
	$(Q)scripts/embed-templates.sh templates > $@

$(BUILD)/gen/builtin_templates.o: $(BUILD)/gen/builtin_templates.c
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

# And the console (web/, any file, binary-safe), served at / by `forewarn serve`.
WEB := $(shell find web -type f ! -name '.*' 2>/dev/null | sort)
$(BUILD)/gen/web_assets.c: $(WEB) scripts/embed-web.sh
	@mkdir -p $(dir $@)
	$(Q)scripts/embed-web.sh web > $@

$(BUILD)/gen/web_assets.o: $(BUILD)/gen/web_assets.c
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libforewarn.a: $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN): $(BUILD)/src/main.o $(BUILD)/libforewarn.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(UNIT): $(UNIT_OBJ) $(BUILD)/libforewarn.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

test-unit: $(UNIT) $(BIN)
	$(Q)cd tests/unit && ../../$(UNIT)

test-e2e: $(BIN)
	$(Q)FOREWARN_BIN=$(abspath $(BIN)) $(PYTHON) tests/e2e/run.py

# The whole suite: plain build, then the same tests under ASan + UBSan.
test:
	$(Q)$(MAKE) --no-print-directory test-unit test-e2e test-fuzz
	$(Q)$(MAKE) --no-print-directory SANITIZER=address,undefined test-unit test-e2e test-fuzz

test-asan:
	$(Q)$(MAKE) --no-print-directory SANITIZER=address,undefined test-unit test-e2e test-fuzz

bench: $(BIN)
	$(Q)bench/run

# Fuzzing (tests/fuzz/, docs/testing.md): one libFuzzer harness per parser,
# tests/fuzz/fuzz_<name>.c, with seeds in tests/fuzz/corpus/<name>/, past
# crash inputs in tests/fuzz/regressions/<name>/ and, where useful, a
# dictionary tests/fuzz/<name>.dict.
#   make fuzz [FUZZ_SECONDS=60]   clang + libFuzzer + ASan + UBSan, each harness for the budget
#   make test-fuzz                replay every corpus and regression input (tests/fuzz/driver.c,
#                                 the current build flavour; part of make test)
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_NICE ?= nice -n 19
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
FUZZ_BIN := $(FUZZ_NAMES:%=build/fuzz/fuzz_%)
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Isrc \
	-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
	$(shell pkg-config --cflags $(PKGS))
FUZZ_GEN := builtin_telecom builtin_templates builtin_playbooks builtin_support_lexicon web_assets
FUZZ_OBJ := $(LIB_SRC:%.c=build/fuzz/obj/%.o) $(FUZZ_GEN:%=build/fuzz/obj/gen/%.o)
REPLAY_BIN := $(FUZZ_NAMES:%=$(BUILD)/fuzz-replay/fuzz_%)

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

build/fuzz/obj/gen/%.o: build/gen/%.c
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

build/fuzz/libforewarn.a: $(FUZZ_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

build/fuzz/fuzz_%: build/fuzz/obj/tests/fuzz/fuzz_%.o build/fuzz/libforewarn.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS_ALL)

# Keep the objects make would treat as intermediate (they are rebuilt otherwise).
.SECONDARY: $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/fuzz_%.o) $(BUILD)/tests/fuzz/driver.o \
	$(FUZZ_NAMES:%=build/fuzz/obj/tests/fuzz/fuzz_%.o)

fuzz-build: $(FUZZ_BIN)

# Each harness runs for FUZZ_SECONDS on a scratch corpus seeded from the
# committed one; crashes land in build/fuzz/crashes/<name>/.
fuzz: $(FUZZ_BIN)
	$(Q)for n in $(FUZZ_NAMES); do \
	    mkdir -p build/fuzz/corpus/$$n build/fuzz/crashes/$$n; \
	    dict=; [ -f tests/fuzz/$$n.dict ] && dict=-dict=tests/fuzz/$$n.dict; \
	    echo "fuzz $$n: $(FUZZ_SECONDS)s"; \
	    $(FUZZ_NICE) build/fuzz/fuzz_$$n $$dict -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=build/fuzz/crashes/$$n/ \
	        build/fuzz/corpus/$$n $$(ls -d tests/fuzz/corpus/$$n tests/fuzz/regressions/$$n 2>/dev/null) \
	        2>build/fuzz/$$n.log || { tail -40 build/fuzz/$$n.log; exit 1; }; \
	    grep -E 'DONE +cov' build/fuzz/$$n.log | tail -1; \
	done

$(BUILD)/fuzz-replay/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/driver.o $(BUILD)/libforewarn.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

test-fuzz: $(REPLAY_BIN)
	$(Q)for n in $(FUZZ_NAMES); do \
	    dirs=$$(ls -d tests/fuzz/corpus/$$n tests/fuzz/regressions/$$n 2>/dev/null); \
	    [ -z "$$dirs" ] && continue; \
	    $(BUILD)/fuzz-replay/fuzz_$$n $$dirs 2>$(BUILD)/fuzz-replay/$$n.log || \
	        { tail -30 $(BUILD)/fuzz-replay/$$n.log; exit 1; }; \
	done

install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)/usr/local/bin/forewarn

format:
	clang-format -i $(shell find src tests -name '*.[ch]')

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(BUILD)/src/main.d $(wildcard build/fuzz/obj/src/*/*.d) \
	$(wildcard $(BUILD)/tests/fuzz/*.d build/fuzz/obj/tests/fuzz/*.d)
