# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# td build: BPF objects -> skeletons -> libtd -> tdagent, tdctl, tests. Quiet by default, V=1 verbose.

PREFIX     ?= /usr/local
DESTDIR    ?=
BUILD      ?= build
CC         ?= gcc
CLANG      ?= clang
BPFTOOL    ?= bpftool
ARCH       := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
MULTIARCH  := $(shell $(CC) -print-multiarch 2>/dev/null)

ifeq ($(V),1)
Q :=
msg =
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

PKGS       := libbpf libnl-3.0 libnl-route-3.0 yaml-0.1 json-c openssl libcrypt liburing
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS     ?= -O2 -g
CFLAGS     += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE \
              -Iinclude -Iuser/lib -I$(BUILD)/skel $(PKG_CFLAGS)
LDLIBS     += $(PKG_LIBS) -lev -lelf -lz -lpthread -lm
ifeq ($(SANITIZE),1)
CFLAGS     += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS    += -fsanitize=address,undefined
endif

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Iinclude -Ibpf \
              $(if $(MULTIARCH),-I/usr/include/$(MULTIARCH))

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS      := $(patsubst bpf/%.bpf.c,$(BUILD)/skel/%.skel.h,$(BPF_SRCS))
BPF_HDRS   := $(wildcard bpf/lib/*.h) $(wildcard include/td/*.h)

LIB_SRCS   := $(wildcard user/lib/*.c)
LIB_OBJS   := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
LIBTD      := $(BUILD)/libtd.a
USER_HDRS  := $(wildcard user/lib/*.h) $(wildcard user/agent/*.h) $(wildcard user/tdctl/*.h) \
              $(wildcard include/td/*.h)

# ---- user/http: HTTP/1.1 core (parser, chunked), built into libtd; proposed, lead reviews ----
HTTP_SRCS  := $(wildcard user/http/*.c)
HTTP_HDRS  := $(wildcard user/http/*.h)
LIB_OBJS   += $(patsubst %.c,$(BUILD)/%.o,$(HTTP_SRCS))
USER_HDRS  += $(HTTP_HDRS)
CFLAGS     += -Iuser/http
# ---- end user/http ----

# ---- user/proxy: forward-proxy logic (RFC 9111 cache policy), built into libtd ----
PROXY_SRCS := $(wildcard user/proxy/*.c)
PROXY_HDRS := $(wildcard user/proxy/*.h)
LIB_OBJS   += $(patsubst %.c,$(BUILD)/%.o,$(PROXY_SRCS))
USER_HDRS  += $(PROXY_HDRS)
CFLAGS     += -Iuser/proxy
# ---- end user/proxy ----

# ---- user/gateway: API gateway (routing, rate limits, auth), built into libtd ----
GW_SRCS    := $(wildcard user/gateway/*.c)
GW_HDRS    := $(wildcard user/gateway/*.h)
LIB_OBJS   += $(patsubst %.c,$(BUILD)/%.o,$(GW_SRCS))
USER_HDRS  += $(GW_HDRS)
CFLAGS     += -Iuser/gateway
# ---- end user/gateway ----

AGENT_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard user/agent/*.c))
TDCTL_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard user/tdctl/*.c))
UNIT_OBJS  := $(patsubst %.c,$(BUILD)/%.o,$(wildcard selftests/unit/*.c))
BPFT_OBJS  := $(patsubst %.c,$(BUILD)/%.o,$(wildcard selftests/bpf/*.c))
MESHT_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard selftests/mesh/*.c))

HTTPT_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard selftests/http/*.c))
FPT_OBJS   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard selftests/fp/*.c))

BINS       := $(BUILD)/bin/tdagent $(BUILD)/bin/tdctl
TESTBINS   := $(BUILD)/bin/td_unit $(BUILD)/bin/td_bpf_fixtures $(BUILD)/bin/td_mesh_ctl
ifneq ($(HTTPT_OBJS),)
TESTBINS   += $(BUILD)/bin/td_http_tool
endif
ifneq ($(FPT_OBJS),)
TESTBINS   += $(BUILD)/bin/td_fp_ctl
endif

.PHONY: all bpf clean test test-unit test-bpf test-netns demo bench bench-l4 bench-mesh \
        bench-gateway bench-proxy install deps fuzz fuzz-smoke fuzz-build
all: $(BPF_OBJS) $(BINS) $(TESTBINS)
bpf: $(BPF_OBJS) $(SKELS)

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS)
	@mkdir -p $(@D)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp.o
	$(Q)$(BPFTOOL) gen object $@ $@.tmp.o && rm -f $@.tmp.o

$(BUILD)/skel/%.skel.h: $(BUILD)/bpf/%.bpf.o
	@mkdir -p $(@D)
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@.tmp && mv $@.tmp $@

$(BUILD)/%.o: %.c $(USER_HDRS) $(SKELS)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIBTD): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/tdagent: $(AGENT_OBJS) $(LIBTD)
	@mkdir -p $(@D)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/bin/tdctl: $(TDCTL_OBJS) $(LIBTD)
	@mkdir -p $(@D)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/bin/td_unit: $(UNIT_OBJS) $(LIBTD)
	@mkdir -p $(@D)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -lcunit -o $@

$(BUILD)/bin/td_bpf_fixtures: $(BPFT_OBJS) $(LIBTD)
	@mkdir -p $(@D)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/bin/td_mesh_ctl: $(MESHT_OBJS) $(LIBTD)
	@mkdir -p $(@D)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# selftests/fp: td_fp_ctl, the transparent-redirect driver and stand-in proxy of test_fp_transparent
$(BUILD)/bin/td_fp_ctl: $(FPT_OBJS) $(LIBTD)
	@mkdir -p $(@D)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# selftests/http: td_http_tool, a standalone driver of the HTTP engine for engine tests
$(BUILD)/bin/td_http_tool: $(HTTPT_OBJS) $(LIBTD)
	@mkdir -p $(@D)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# ---- fuzz: libFuzzer harnesses selftests/fuzz/fuzz_<name>.c, seeds in selftests/fuzz/<name>/ ----
# make fuzz: every harness FUZZ_TIME s (default 60); make fuzz-smoke: FUZZ_SMOKE_TIME s each.
# The corpus grows in $(BUILD)/fuzz/corpus/<name> (seeds stay untouched); crashes land in
# $(BUILD)/fuzz/artifacts/. A harness lists its sources in FUZZ_SRCS_<name>.
FUZZ_CC         ?= clang
FUZZ_TIME       ?= 60
FUZZ_SMOKE_TIME ?= 5
FUZZ_CFLAGS     := -g -O1 -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -Iuser/http \
                   -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                   -fno-omit-frame-pointer
FUZZ_NAMES      := $(patsubst selftests/fuzz/fuzz_%.c,%,$(wildcard selftests/fuzz/fuzz_*.c))
FUZZ_BINS       := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_NAMES))
FUZZ_SRCS_http  := user/http/parser.c user/http/chunked.c

.SECONDEXPANSION:
$(BUILD)/fuzz/fuzz_%: selftests/fuzz/fuzz_%.c $$(FUZZ_SRCS_$$*) $(HTTP_HDRS)
	@mkdir -p $(@D)
	$(call msg,FUZZ-CC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $< $(FUZZ_SRCS_$*) -o $@

fuzz-build: $(FUZZ_BINS)

fuzz fuzz-smoke: $(FUZZ_BINS)
	$(Q)set -e; t=$(if $(filter fuzz-smoke,$@),$(FUZZ_SMOKE_TIME),$(FUZZ_TIME)); \
	for n in $(FUZZ_NAMES); do \
		mkdir -p $(BUILD)/fuzz/corpus/$$n $(BUILD)/fuzz/artifacts; \
		printf '  %-8s %s (%ss)\n' FUZZ $$n $$t; \
		$(BUILD)/fuzz/fuzz_$$n -max_total_time=$$t -print_final_stats=1 \
			-artifact_prefix=$(BUILD)/fuzz/artifacts/$$n- \
			$(BUILD)/fuzz/corpus/$$n selftests/fuzz/$$n 2>$(BUILD)/fuzz/$$n.log || \
			{ tail -n 40 $(BUILD)/fuzz/$$n.log; exit 1; }; \
		grep -E '^stat::(number_of_executed_units|new_units_added)' $(BUILD)/fuzz/$$n.log | \
			sed 's/^/           /'; \
	done
# ---- end fuzz ----

deps:
	$(Q)scripts/install-deps.sh --check >/dev/null 2>&1 || scripts/install-deps.sh

# make test: dependencies, build, then unit -> BPF fixtures -> netns scenarios.
test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory test-unit fuzz-smoke test-bpf test-netns

test-unit: $(BUILD)/bin/td_unit
	$(Q)$(BUILD)/bin/td_unit
	$(Q)scripts/check-metrics.sh $(BUILD)

test-bpf: $(BUILD)/bin/td_bpf_fixtures $(BPF_OBJS)
	$(Q)selftests/bpf/run.sh $(BUILD)

test-netns: $(BINS) $(BPF_OBJS) $(BUILD)/bin/td_mesh_ctl
	$(Q)selftests/netns/run.sh $(BUILD)

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh $(BUILD)

bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/bench.sh $(BUILD) all
bench-l4 bench-mesh bench-gateway bench-proxy: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/bench.sh $(BUILD) $(patsubst bench-%,%,$@)

# systemd unit: $(PREFIX)/lib/systemd/system (systemd searches /usr/local/lib/systemd/system
# too), its paths rewritten to PREFIX; the config stays /etc/td/td.yaml.
UNITDIR    ?= $(PREFIX)/lib/systemd/system
install: $(BINS) $(BPF_OBJS)
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/lib/td/bpf $(DESTDIR)/etc/td \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/doc/td
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/sbin/
	install -m 0644 $(BPF_OBJS) $(DESTDIR)$(PREFIX)/lib/td/bpf/
	install -m 0644 docs/examples/td.yaml $(DESTDIR)/etc/td/td.yaml.example
	sed -e 's|/usr/local/|$(PREFIX)/|g' scripts/tdagent.service >$(DESTDIR)$(UNITDIR)/tdagent.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/tdagent.service
	install -m 0644 docs/operations.md docs/tdctl.md docs/metrics.md docs/admin-api.md \
		docs/configuration.md $(DESTDIR)$(PREFIX)/share/doc/td/

clean:
	$(call msg,CLEAN,$(BUILD))
	$(Q)rm -rf $(BUILD)

.DELETE_ON_ERROR:
.SECONDARY:
