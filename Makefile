# forewarn -- one GNU Makefile, Redis style.
#
#   make                 build ./build/forewarn
#   make test            unit + end-to-end tests, then again under ASan+UBSan
#   make test-unit       unit tests only (current build flavour)
#   make test-e2e        end-to-end tests only (current build flavour)
#   make SANITIZER=address,undefined ...   sanitizer build in build/asan
#   make bench           benchmarks (see bench/README.md)
#   make V=1             show full command lines

PKGS := sqlite3 libmicrohttpd libcurl yaml-0.1 jansson libcrypto libpcre2-8
PYTHON ?= /usr/bin/python3

ifeq ($(SANITIZER),)
BUILD := build
SANFLAGS :=
else
BUILD := build/asan
SANFLAGS := -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

CC ?= cc
OPT ?= -O2
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wstrict-prototypes -Wshadow \
	-g $(OPT) $(SANFLAGS) -MMD -MP -Isrc $(shell pkg-config --cflags $(PKGS)) $(CFLAGS)
LDLIBS_ALL := $(shell pkg-config --libs $(PKGS)) -lpthread -lm $(LDLIBS)
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

.PHONY: all test test-unit test-e2e test-asan bench fuzz clean install format

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
	$(Q)$(MAKE) --no-print-directory test-unit test-e2e
	$(Q)$(MAKE) --no-print-directory SANITIZER=address,undefined test-unit test-e2e

test-asan:
	$(Q)$(MAKE) --no-print-directory SANITIZER=address,undefined test-unit test-e2e

bench: $(BIN)
	$(Q)bench/run

# libFuzzer harnesses (clang), one per parser, sanitizers on:
#   build/fuzz/fuzz_sentiment -dict=tests/fuzz/sentiment.dict tests/fuzz/corpus/sentiment
FUZZ_CC ?= clang
FUZZ_SRC := $(shell find tests/fuzz -name 'fuzz_*.c' 2>/dev/null | sort)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)

fuzz: $(FUZZ_BIN)

build/fuzz/%: tests/fuzz/%.c $(LIB_SRC) $(BUILD)/gen/builtin_telecom.c $(BUILD)/gen/builtin_templates.c \
		$(BUILD)/gen/builtin_support_lexicon.c $(BUILD)/gen/web_assets.c
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
		$(shell pkg-config --cflags $(PKGS)) -o $@ $^ $(LDLIBS_ALL)

install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)/usr/local/bin/forewarn

format:
	clang-format -i $(shell find src tests -name '*.[ch]')

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(BUILD)/src/main.d
