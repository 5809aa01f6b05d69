# AI-Prism. `make run` starts the whole system in one process; `make test`
# runs every module's tests against real NATS, PostgreSQL, S3 and the
# Bedrock simulator.
GO      ?= go
MODULES := streams platform ingest extractor analyzer persist accounts notifier api cmd/prism
PKGS    := $(foreach m,$(MODULES),./$(m)/...)
# make test starts the longest packages first (the api and the system and
# browser tests of cmd/prism), so that they do not start last and run alone
# on one core at the end.
TEST_ORDER := api cmd/prism extractor persist analyzer accounts platform streams ingest notifier
TEST_PKGS  := $(foreach m,$(TEST_ORDER),./$(m)/...)
ifneq ($(sort $(MODULES)),$(sort $(TEST_ORDER)))
$(error TEST_ORDER must list exactly the MODULES)
endif
export GOTOOLCHAIN ?= local

.PHONY: run build test test-short vet fmt postgres fuzz bench bench-full chaos image test-real-s3 clean

run: postgres build
	./bin/prism dev

build:
	$(GO) build -o bin/prism ./cmd/prism

postgres:
	@scripts/ensure-postgres.sh

# The race detector needs cgo; without a C compiler the tests run without it.
RACE := $(shell command -v $${CC:-gcc} >/dev/null 2>&1 && echo -race)

# Two kinds of test run after the rest, without the race detector: the
# router's quota scenarios run on a scaled clock that the race detector's
# slowdown and parallel packages would break (they run alone), and the
# extractor's rlimit tests need a worker without the race runtime, whose
# shadow memory does not fit a small RLIMIT_DATA (they fail under -race).
test: postgres
	$(GO) vet $(PKGS)
	$(GO) test $(RACE) -count=1 -timeout 15m -skip '^TestScenario|^TestRlimit|^TestRealS3|^TestChaos|^TestTopology' $(TEST_PKGS)
	$(GO) test -count=1 -timeout 5m -run '^TestScenario' ./analyzer/router/
	$(GO) test -count=1 -timeout 5m -run '^TestRlimit' ./extractor/sandbox/

# The process topology (cmd/prism/internal/topology): a document through
# every role as its own process on a 3-node cluster with the shipped NATS
# users, a NATS node killed with SIGKILL mid-run and restarted, and a
# rolling restart of every role process, each with the exactly-once
# ledger. Not in make test for now: in CI's full run the node-loss test
# found DOCS with no current replica while a node was down, and an SSE
# client missed a progress event (see the README); PRISM_CHAOS=long runs
# many more documents through them.
chaos: postgres
	$(GO) test -count=1 -timeout 15m -v -run '^TestTopology|^TestChaos' ./cmd/prism/internal/topology/
	PRISM_CHAOS=long $(GO) test -count=1 -timeout 15m -v -run '^TestChaos' ./cmd/prism/internal/topology/

# blob's server-dependent cases on a real S3 server, SeaweedFS's weed,
# built once per version from its Go module (minutes on two cores, more
# on a clean machine: not yet in make test or CI).
test-real-s3:
	scripts/build-weed.sh >/dev/null
	$(GO) test -count=1 -v -run '^TestRealS3' ./platform/blob/

test-short:
	$(GO) test -count=1 -short $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $(MODULES)

# Each parser's fuzz target for FUZZTIME (CI runs them briefly; run longer
# by hand: make fuzz FUZZTIME=10m).
FUZZTIME ?= 5s
FUZZ_TARGETS := textfmt:FuzzText detect:FuzzDetect docx:FuzzDOCX xlsx:FuzzXLSX htmlfmt:FuzzHTML pdf:FuzzPDF
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$fn ($(FUZZTIME))"; \
	  (cd extractor && $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) ./$$pkg/); done

# The benchmark: a quick run of every scenario (documents, then the chat
# scenario on a system of its own: 50 chats x 3 questions), then the full
# one with the capacity scenario. One scenario: ./bin/prism bench -scenario chat.
bench: build
	./bin/prism bench -quick

bench-full: build
	./bin/prism bench -capacity

# The container image (Dockerfile): one image, every role. It needs a
# Docker engine, which the build machines do not have: there the target
# says so and fails; `make test` checks the Dockerfile without one.
IMAGE   ?= ai-prism
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
image:
	@command -v docker >/dev/null 2>&1 || { echo "make image: no docker command on this machine; build where Docker runs" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make image: the docker command reaches no Docker engine here; build where one runs" >&2; exit 1; }
	DOCKER_BUILDKIT=1 docker build -t $(IMAGE):$(VERSION) \
	  --build-arg VERSION=$(VERSION) \
	  --build-arg REVISION=$$(git rev-parse HEAD) \
	  --build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) .

clean:
	rm -rf bin var
