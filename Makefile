# dirmngr (Go) — build, run, test.
#   make run    build and start dirmngr in the foreground on the standard socket
#   make test   install missing test dependencies (Debian, as root), then run every test
SHELL      := /bin/bash
GO         ?= go
BIN        := bin
FUZZTIME   ?= 30s
BENCHTIME  ?= 1x
# Debian packages the tests drive as real peers.
TEST_DEBS  := gpgsm gpgconf gpg-agent dirmngr openssl systemd slapd ldap-utils fetch-crl libnss3-tools man-db procps
PROGRAMS   := dirmngr dirmngr-client fetch-crl

.PHONY: all build run test test-deps lint bench fuzz clean man deb
NFPM_VERSION ?= v2.35.3
VERSION      ?= 0.1.0

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

# Starts the daemon in the foreground on GnuPG's standard socket for the
# default homedir ($GNUPGHOME or ~/.gnupg), logging to the terminal.
run: build
	@home="$${GNUPGHOME:-$$HOME/.gnupg}"; mkdir -p -m 700 "$$home"; \
	echo "dirmngr: homedir $$home; stop with Ctrl-C"; \
	exec $(BIN)/dirmngr --homedir "$$home" --daemon --no-detach --verbose

# Installs the Debian packages the integration tests need, when missing and
# when running as root (CI). Elsewhere it only reports what is missing.
test-deps:
	@missing=""; for p in $(TEST_DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    policy=""; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; policy=1; fi; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; rc=$$?; \
	    [ -n "$$policy" ] && rm -f /usr/sbin/policy-rc.d; [ $$rc = 0 ] || exit $$rc; \
	  else echo "missing Debian packages (tests needing them fail in CI):$$missing"; fi; \
	fi

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: test-deps lint build
	$(GO) test -race -timeout 20m ./...

# The comparisons need GnuPG's dirmngr and Perl fetch-crl: test-deps.
bench: test-deps build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Man pages under the package's names (the -go suffix keeps them apart from
# GnuPG's and Debian fetch-crl's), rendered with those names.
man:
	$(GO) run ./cli/mandoc/genman -out build/man -fetch-crl-page docs/fetch-crl.8

# Debian package built with nfpm (installed as a Go tool on first use), from
# stripped binaries.
deb: man
	@mkdir -p build/bin build/tools
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o build/bin/ ./cmd/...
	GOBIN=$(CURDIR)/build/tools $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
	cd packaging && VERSION=$(VERSION) GOARCH=$$($(GO) env GOARCH) ../build/tools/nfpm package -f nfpm.yaml -p deb -t ../build/

clean:
	rm -rf $(BIN) build
