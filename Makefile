# ganeti-userdown — build, test and package.
#
#   make demo    the whole story on simulated Xen nodes and Ganeti masters
#   make test    vet + unit and end-to-end tests
#   make bench   benchmarks (figures for the closing notes)
#   make fuzz    each fuzz target for FUZZTIME (an execution count)
#   make deb     dist/ganeti-userdown_<version>_<arch>.deb (deb-lint: lintian; deb-test: install tests)
#   make itest   a real Ganeti 3.0.2 in network namespaces (root; see itest/doc.go)

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null | sed 's/^v//' || echo dev)
LDFLAGS  := -X ganeti-userdown/internal/version.Version=$(VERSION)
BINARIES := userdown-hvconfig userdown-hook userdown-detect userdown-destroy userdown-watchd
# The toolstack shim /usr/sbin/xl links to (no options, no manual page).
SHIM     := userdown-shim
# An execution count, not a duration: a duration races the fuzz
# coordinator's own deadline (go.dev/issue/75804, fixed in Go 1.27) and
# fails with "context deadline exceeded" on a loaded machine.
FUZZTIME ?= 20000x
# Fakes live under testdata/, which `./...` skips: name their packages.
PKGS      = ./... $(shell find testdata -name '*.go' -printf './%h\n' 2>/dev/null | sort -u)

.PHONY: all build test bench fuzz demo lint deb deb-lint deb-test itest clean

all: build

build:
	@mkdir -p bin
	@for b in $(BINARIES) $(SHIM); do \
		if [ -d cmd/$$b ]; then CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/$$b ./cmd/$$b || exit 1; fi; \
	done

test: lint
	$(GO) test -count=1 $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Runs every Fuzz* function of the module for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# The story on the Xen and xenstored simulators and the Ganeti RAPI fake,
# as a timeline (testdata/demo; its test runs it in `make test`). It builds
# what it runs into a temporary directory and removes it.
demo:
	$(GO) run ./testdata/demo

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go' 2>/dev/null)); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags itest ./itest/

# The Debian package, assembled with dpkg-deb from what `make build` made
# (packaging/build-deb says why and how). DEB_VERSION comes from git describe.
DEB_VERSION ?= $(shell $(GO) run ./packaging/tools/debversion)
WATCHER_HOOK ?= packaging/watcher/50-userdown

# `make build` links statically (CGO_ENABLED=0): the package has no libc
# dependency and also serves the older releases Ganeti 2.x nodes run.
deb: build
	@set -e; \
	for b in $(BINARIES) $(SHIM); do [ -x bin/$$b ] || { echo "make deb: bin/$$b missing: make build found no cmd/$$b" >&2; exit 1; }; done; \
	[ -f $(WATCHER_HOOK) ] || { echo "make deb: the watcher hook $(WATCHER_HOOK) is missing" >&2; exit 1; }; \
	v='$(DEB_VERSION)'; [ -n "$$v" ] || { echo "make deb: no version (go run ./packaging/tools/debversion)" >&2; exit 1; }; \
	export SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct); \
	rm -rf dist/man; \
	$(GO) run ./packaging/tools/manpage -out dist/man -version "$$v" $(addprefix bin/,$(BINARIES)); \
	packaging/build-deb --bindir bin --mandir dist/man --watcher $(WATCHER_HOOK) --version "$$v" --out dist

# lintian on the package: errors fail, warnings are printed.
deb-lint: deb
	lintian --fail-on error --info dist/ganeti-userdown_$(DEB_VERSION)_$$(dpkg --print-architecture).deb

# Install, upgrade, remove and purge the package in scratch roots, and run
# the real Debian xl wrapper through the shim (root only).
deb-test:
	$(GO) test -count=1 -v ./packaging/...

clean:
	rm -rf bin dist

# A real Ganeti 3.0.2 (Debian's ganeti, ganeti-3.0), single- and two-node,
# in network namespaces of its own, with ganeti-userdown installed on each
# node from `make deb` (itest/doc.go). Root only; installs nothing on the
# machine itself (.ci/run installs the packages). ITEST_TRIALS: rounds of
# each poweroff race (20); ITEST_TIMEOUT: torn down and failed past it (30m).
ITEST_PACKAGES = ganeti ganeti-3.0 openssh-server socat fping iproute2 curl xen-utils-4.17
itest: deb
	@for p in $(ITEST_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || \
		{ echo "make itest: $$p is not installed: apt-get install -y --no-install-recommends $(ITEST_PACKAGES)" >&2; exit 1; }; \
	done
	ITEST_DEB=$(CURDIR)/dist/ganeti-userdown_$(DEB_VERSION)_$$(dpkg --print-architecture).deb \
		$(GO) test -tags itest -count=1 -timeout 60m -v ./itest/
