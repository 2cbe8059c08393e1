# credlink developer entry points. `make help` lists them.
GO        ?= go
STATICCHECK = $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
# A count, not a duration: duration-based -fuzztime fails spuriously with "context deadline
# exceeded" on Go 1.26 (golang/go#75804, fixed in 1.27) when the machine is loaded.
FUZZTIME  ?= 20000x
BIN       := bin

.PHONY: help bench bench-kvm nix monitoring units build test mutation lint fuzz-smoke fixtures demo e2e nested clean

help:
	@echo "make demo        host-launcher demo: the whole flow on this machine, no VM"
	@echo "make test        unit and integration tests (the README's test command)"
	@echo "make mutation    disable each security guard in a scratch copy; a test must fail for each"
	@echo "make lint        gofmt, go vet, staticcheck"
	@echo "make fuzz-smoke  every fuzz target for $(FUZZTIME) executions"
	@echo "make bench       the performance report (test/bench; root: installs valgrind, socat, node_exporter, QEMU assets;"
	@echo "                 ~10 min): sections instr, agent, ack, launch, scale, scale-wait, go (-only NAME,...)"
	@echo "make bench-kvm   launch overhead with the guest under KVM, in nested L1 (root, 8–17 min; not in make bench)"
	@echo "make e2e         boot real QEMU guests (TCG) through host-launcher; installs qemu etc. when root"
	@echo "make nested      nested KVM under TCG: vhost-vsock, systemd 257/254 guests, graceful stop (root)"
	@echo "make nix         evaluate nixos-module/ + flake.nix with the real nixpkgs lib and microvm.nix (../shared), check vendorHash"
	@echo "make monitoring  promtool check/test of monitoring/"
	@echo "make units       systemd-analyze verify + exposure budgets of systemd/"
	@echo "make fixtures    re-capture SMBIOS tables from real QEMU guests (needs qemu)"
	@echo "make build       static binaries into $(BIN)/"

demo: build
	$(BIN)/host-launcher demo

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/ ./cmd/...

test:
	$(GO) test -race -count=1 ./...

# Each security guard in test/mutation/guards.go disabled in turn; exits non-zero if a test
# suite lets one through. Run after make test: it reuses that build cache.
mutation:
	test/mutation/run.sh

lint:
	@unformatted=$$(gofmt -l $$(find cmd pkg test -name '*.go' 2>/dev/null)); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# Each fuzz target briefly, from its seed corpus (go test runs one target per invocation).
fuzz-smoke:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' pkg cmd 2>/dev/null); do \
	  d=$$(dirname $$f); \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "fuzz $$d $$t"; \
	    $(GO) test ./$$d -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) >/tmp/fuzz.$$$$.log 2>&1 || { cat /tmp/fuzz.$$$$.log; exit 1; }; \
	    tail -1 /tmp/fuzz.$$$$.log; \
	  done; \
	done

# The performance report. Installs its peers (Debian's prometheus-node-exporter and socat) and the
# QEMU assets when run as root; writes .cache/bench/results.md. As root, scale-wait raises
# kernel.pid_max to systemd's value for its run and restores it (-raise-pid-max).
bench: build
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/guest-agent-static ./cmd/guest-agent
	@command -v prometheus-node-exporter >/dev/null && command -v socat >/dev/null && command -v valgrind >/dev/null || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus-node-exporter socat valgrind)
	test/e2e/assets.sh >/dev/null
	$(GO) run ./test/bench -bin $(BIN) -out .cache/bench -raise-pid-max

# The launch row under KVM (test/bench/launchkvm.go): boots L1 (test/nested/l1.sh, nested
# KVM under TCG) and interleaves plain QEMU with host-launcher (vsock, serial) inside it. Root;
# 8 min for 15 rounds, plus ~3 min for each L1 that freezes (the section replaces it). Its own
# output directory, so make bench's results.md stays.
bench-kvm: build
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/guest-agent-static ./cmd/guest-agent
	test/e2e/assets.sh >/dev/null
	$(GO) run ./test/bench -bin $(BIN) -out .cache/bench-kvm -only launch-kvm -runs 15 -e2e-cache "$$(test/e2e/assets.sh)"

# End-to-end: real guests under QEMU software emulation. test/e2e/assets.sh installs QEMU,
# busybox-static, cpio, kmod when missing and caches Debian's kernel under .cache/e2e.
e2e:
	cd test/e2e && $(GO) test -tags e2e -count=1 -v -timeout 15m .

nix:
	nixos-module/tests/run.sh
	nixos-module/vendor-hash.sh --check

monitoring:
	promtool check rules monitoring/credlink-rules.yml
	cd monitoring && promtool test rules credlink-rules.test.yml
	promtool check config monitoring/prometheus-scrape.yml

units: build
	systemd/check.sh

fixtures:
	test/fixtures/capture-smbios.sh

clean:
	rm -rf $(BIN) .cache

# Nested KVM under TCG (test/nested): vhost-vsock, systemd 257/254 guests, graceful stop. Root;
# debootstraps and caches Debian roots under .cache/nested on first use.
nested:
	cd test/nested && $(GO) test -tags nested -count=1 -v -timeout 30m .
