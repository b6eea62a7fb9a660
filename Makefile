# tend: build, test, install.  GNU make.
#
#   make            build the release binary (target/release/tend)
#   make test       build, then run every test (unit + integration)
#   make run        run a demo supervisor in the foreground (no root needed)
#   make install    install under $(PREFIX) (default /usr/local), honours DESTDIR
#   make uninstall  remove what `make install` put there (keeps an edited /etc/tend.conf)
#   make bench      compare tend with tini, dumb-init, catatonit, BusyBox, supervisord
#   make bench-plot draw bench/results.json as bench/results.html (SVG charts)
#   make layout     profile tend under valgrind and regenerate src/hot.ld
#   make lint       rustfmt and clippy, warnings are errors
#   make fuzz       run every fuzz target for FUZZ_SECONDS (default 60) each
#   make man        render the man pages and fail on any groff warning
#   make clean      remove build output

CARGO      ?= cargo
PYTHON     ?= python3
# How long each fuzz target runs (`make fuzz`; fuzz/run.sh installs cargo-fuzz).
FUZZ_SECONDS ?= 60
TEST_THREADS ?= 4
# e.g. make bench BENCH_ARGS=--quick
BENCH_ARGS ?=

PREFIX     ?= /usr/local
DESTDIR    ?=
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc

INSTALL    ?= install

BIN        := target/release/tend
DEMO_SOCK  := $(CURDIR)/target/demo.sock
MAN8       := init/tend.8 init/tendctl.8
MAN5       := init/tend.conf.5

.PHONY: all build test run install uninstall bench bench-plot layout fuzz lint man clean

all: build

# `build` always asks cargo (it knows when nothing changed); `$(BIN)` only
# builds when the file is missing, so `sudo make install` after `make` does
# not need cargo in root's PATH.
build:
	$(CARGO) build --release

$(BIN):
	$(CARGO) build --release

test: build
	$(CARGO) test --no-fail-fast -- --test-threads=$(TEST_THREADS)

run: build
	@mkdir -p target
	@rm -f $(DEMO_SOCK)
	@echo "tend demo: supervising the components of init/demo.conf (Ctrl-C stops it)."
	@echo "In another terminal try:"
	@echo "  ./$(BIN) ctl --url unix://$(DEMO_SOCK) list"
	@echo "  curl -s --unix-socket $(DEMO_SOCK) http://localhost/programs"
	@echo
	./$(BIN) -c init/demo.conf --control unix://$(DEMO_SOCK)

install: $(BIN)
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)
	$(INSTALL) -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/tend
	ln -sf ../sbin/tend $(DESTDIR)$(BINDIR)/tendctl
	$(INSTALL) -m 0644 init/tend.8 $(DESTDIR)$(MANDIR)/man8/tend.8
	$(INSTALL) -m 0644 init/tendctl.8 $(DESTDIR)$(MANDIR)/man8/tendctl.8
	$(INSTALL) -m 0644 init/tend.conf.5 $(DESTDIR)$(MANDIR)/man5/tend.conf.5
	sed 's|/usr/local/sbin/tend|$(SBINDIR)/tend|g' init/tend.service \
		> $(DESTDIR)$(UNITDIR)/tend.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/tend.service
	@# Never overwrite a configuration someone may have edited.
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/tend.conf ]; then \
		echo "$(DESTDIR)$(SYSCONFDIR)/tend.conf exists: installing tend.conf.example beside it"; \
		$(INSTALL) -m 0644 init/tend.conf $(DESTDIR)$(SYSCONFDIR)/tend.conf.example; \
	else \
		$(INSTALL) -m 0644 init/tend.conf $(DESTDIR)$(SYSCONFDIR)/tend.conf; \
	fi

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/tend $(DESTDIR)$(BINDIR)/tendctl
	rm -f $(DESTDIR)$(MANDIR)/man8/tend.8 $(DESTDIR)$(MANDIR)/man8/tendctl.8
	rm -f $(DESTDIR)$(MANDIR)/man5/tend.conf.5
	rm -f $(DESTDIR)$(UNITDIR)/tend.service
	rm -f $(DESTDIR)$(SYSCONFDIR)/tend.conf.example
	@# Remove /etc/tend.conf only when it is still the unedited example.
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/tend.conf ]; then \
		if cmp -s init/tend.conf $(DESTDIR)$(SYSCONFDIR)/tend.conf; then \
			rm -f $(DESTDIR)$(SYSCONFDIR)/tend.conf; \
		else \
			echo "keeping $(DESTDIR)$(SYSCONFDIR)/tend.conf (edited)"; \
		fi; \
	fi

# As root for every row (PID namespaces, peers installed with apt-get when
# missing); builds tests/bench/helper with $(CARGO); about 6 minutes.
bench: build
	CARGO=$(CARGO) $(PYTHON) tests/bench/bench.py --tend $(BIN) $(BENCH_ARGS)

# Python's standard library only.
bench-plot:
	$(PYTHON) tests/bench/plot.py bench/results.json bench/results.html

# Regenerate src/hot.ld, the code layout (as root; installs valgrind).
layout:
	$(PYTHON) tests/bench/layout.py

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh fuzz/run.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# groff prints warnings on stderr but exits 0, so fail on any output there.
man:
	@for p in $(MAN8) $(MAN5); do \
		echo "== $$p"; \
		out=$$(groff -t -man -Tutf8 -ww -z $$p 2>&1); \
		if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; \
	done; echo "man pages render without warnings"

clean:
	$(CARGO) clean
	rm -f bench/results.json bench/results.html
