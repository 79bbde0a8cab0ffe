# sluice — see README.md. Every target runs from a clean clone: what a target
# needs (Kafka jars, ClickHouse, protoc) it installs itself.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

MODULES  := pkg schemas services/ingest services/router services/sender services/dlr tools
BIN      := bin
COMMANDS := services/ingest/cmd/sluice-ingest services/router/cmd/sluice-router \
            services/sender/cmd/sluice-sender services/dlr/cmd/sluice-dlr \
            tools/cmd/smsc-sim tools/cmd/sluice-loadgen tools/cmd/sluice-devstack \
            tools/cmd/sluice-stats
GOTEST   ?= go test -count=1 -timeout 20m
# A count, not a duration: a duration can end in a spurious "context deadline
# exceeded" on a busy machine (golang/go#75804, fixed only in Go 1.27).
FUZZTIME ?= 100000x

.PHONY: all build test unit vet fuzz bench chaos demo proto testenv-up testenv-down clean helm-check images images-check

all: build

## build: every binary into bin/
build:
	@mkdir -p $(BIN)
	@for c in $(COMMANDS); do \
		mod=$${c%%/cmd/*}; \
		echo "go build $$c"; \
		(cd $$mod && go build -o $(CURDIR)/$(BIN)/ ./cmd/$${c##*/cmd/}); \
	done

## test: every test, against a real Kafka broker and a real ClickHouse server it starts itself
test:
	trap 'tools/testenv/down.sh' EXIT; \
	tools/testenv/up.sh; \
	source .testenv/env.sh; \
	$(MAKE) --no-print-directory vet unit fuzz helm-check images-check

## unit: go test in every module, against whatever SLUICE_TEST_* points at (kfake and a local clickhouse-server otherwise)
unit:
	@for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GOTEST) ./...); done

## vet: go vet in every module
vet:
	@for m in $(MODULES); do (cd $$m && go vet ./...); done

## fuzz: each fuzz target for FUZZTIME
fuzz:
	@for m in $(MODULES); do \
		(cd $$m && for pkg in $$(go list ./...); do \
			for f in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
				echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
				go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
			done; done); \
	done

## bench: the benchmarks, printing their figures, against the real Kafka and ClickHouse test servers (Kannel installed by up.sh for the comparison);
## the sender and whole-pipeline ones with BENCH_N messages, beside Kannel's rate for as many; PROFILE=dir saves CPU profiles of the four services
BENCH_N ?= 20000
PROFILE ?=
bench:
	trap 'tools/testenv/down.sh' EXIT; \
	tools/testenv/up.sh; \
	source .testenv/env.sh; \
	for m in $(filter-out tools,$(MODULES)); do (cd $$m && go test -run '^$$' -bench . -benchmem ./...); done; \
	cd tools; \
	go test -run '^$$' -bench . -benchmem -benchtime $(BENCH_N)x $$(go list ./... | grep -v /chaos); \
	SLUICE_BENCH_N=$(BENCH_N) SLUICE_BENCH_PROFILE=$(PROFILE) go test -run '^$$' -bench BenchmarkPipeline -benchtime 1x ./chaos/

## chaos: the whole-pipeline fault suite in full (the four services as processes, kill -9 of
## each mid-stream, a carrier that disconnects, stalls and throttles, ClickHouse away for a
## minute, the broker restarted, a broker of three killed with kill -9 and every partition's
## leadership moved, bigger campaigns, a baseline); `make test` runs its short
## form in `unit`
CHAOS_N    ?= 10000
CHAOS_RATE ?= 2000
chaos:
	trap 'tools/testenv/down.sh' EXIT; \
	tools/testenv/up.sh; \
	source .testenv/env.sh; \
	cd tools && SLUICE_CHAOS=full SLUICE_CHAOS_N=$(CHAOS_N) SLUICE_CHAOS_RATE=$(CHAOS_RATE) \
		$(GOTEST) -v -run '^(TestKill9|TestCarrierFaults|TestClickHouseAway|TestBrokerRestart|TestBrokerCluster)' ./chaos

## demo: a sample campaign through all four services on embedded defaults
demo:
	cd tools && go run ./cmd/sluice-devstack -demo -data $(CURDIR)/.devstack $(if $(N),-messages $(N))

## proto: regenerate schemas/sluicepb from schemas/proto
proto:
	command -v protoc >/dev/null || apt-get install -y protobuf-compiler
	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	cd schemas && PATH="$$PATH:$$(go env GOPATH)/bin" protoc -I proto --go_out=. \
		--go_opt=module=github.com/sluice-sms/sluice/schemas proto/sluice/v1/*.proto

## helm-check: render deploy/helm/sluice with Helm's Go packages (default and non-default values),
## validate every manifest against the Kubernetes JSON schemas, check its promises
helm-check:
	deploy/helm/check/fetch-schemas.sh
	cd deploy/helm/check && GOWORK=off go vet ./... && GOWORK=off $(GOTEST) ./...

IMAGE_REGISTRY  ?= ghcr.io/sluice-sms
IMAGE_TAG       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE_PLATFORMS ?= linux/amd64
comma := ,
space := $(subst ,, )

## images: an OCI image archive per service (and the carrier simulator),
## bin/images/<name>.tar, built without a container engine (static binaries on an
## empty base, non-root)
IMAGE_COMMANDS := services/ingest/cmd/sluice-ingest services/router/cmd/sluice-router \
                  services/sender/cmd/sluice-sender services/dlr/cmd/sluice-dlr tools/cmd/smsc-sim
images:
	@for p in $(subst $(comma), ,$(IMAGE_PLATFORMS)); do \
		for c in $(IMAGE_COMMANDS); do \
			name=$${c##*/}; echo "go build $$name for $$p"; \
			(cd $${c%%/cmd/*} && CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} go build -trimpath -ldflags='-s -w' \
				-o $(CURDIR)/$(BIN)/images/$${p/\//_}/$$name ./cmd/$$name); \
		done; \
	done
	cd deploy/images && GOWORK=off go run ./cmd/sluice-image -bin $(CURDIR)/$(BIN)/images -out $(CURDIR)/$(BIN)/images \
		-names $(subst $(space),$(comma),$(notdir $(IMAGE_COMMANDS))) \
		-registry $(IMAGE_REGISTRY) -tag $(IMAGE_TAG) -platforms $(IMAGE_PLATFORMS) \
		-version $(IMAGE_TAG) -revision $$(git rev-parse HEAD 2>/dev/null || echo unknown)

## images-check: the image builder's tests (an image's binary runs; builds are reproducible)
images-check:
	cd deploy/images && GOWORK=off go vet ./... && GOWORK=off $(GOTEST) ./...

testenv-up:
	tools/testenv/up.sh
testenv-down:
	tools/testenv/down.sh

clean:
	rm -rf $(BIN)
