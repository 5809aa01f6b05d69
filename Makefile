# AI-Prism. `make run` starts the whole system in one process; `make test`
# runs every module's tests against real NATS, PostgreSQL, S3 and the
# Bedrock simulator.
GO      ?= go
MODULES := streams platform ingest extractor analyzer persist notifier api cmd/prism
PKGS    := $(foreach m,$(MODULES),./$(m)/...)
export GOTOOLCHAIN ?= local

.PHONY: run build test test-short vet fmt postgres fuzz bench chaos clean

run: postgres build
	./bin/prism dev

build:
	$(GO) build -o bin/prism ./cmd/prism

postgres:
	@scripts/ensure-postgres.sh

# The quota scenarios run on a scaled clock that the race detector's
# slowdown would break: they skip themselves under -race and run after.
test: postgres
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	$(GO) test -count=1 -timeout 5m -run Scenario ./analyzer/router/

test-short:
	$(GO) test -count=1 -short $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $(MODULES)

clean:
	rm -rf bin var
