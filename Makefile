# mediascale: build, synthesize, test and run locally.
# The two commands to know: `make demo` and `make test` (see README.md).

SHELL := /bin/bash
ENV ?= dev
FUNCTIONS := $(notdir $(wildcard functions/*))
GO_DIRS := agent events functions infra scripts shared
CDK := node_modules/.bin/cdk
# Synth needs no AWS account: keep the SDKs from probing the EC2 instance
# metadata address for credentials (the network rule: loopback only).
export AWS_EC2_METADATA_DISABLED := true
# The Lambda build: static arm64 binaries named bootstrap for provided.al2023.
LAMBDA_GOFLAGS := GOOS=linux GOARCH=arm64 CGO_ENABLED=0

.PHONY: faults fuzz simulate all build deps synth synth-all lint-templates shellcheck check-imports test test-go fmt-check vet demo invoke replay deploy diff destroy up down bench clean fleet pause resume scale status show-add shows show-cancel

all: build

# Installs Debian and npm packages the tests and the demo need.
deps:
	@scripts/deps

# Builds every function as build/<name>/bootstrap, and the node agent as
# build/agent/mediascale-agent (the deploy document ships it to nodes).
build: $(FUNCTIONS:%=build/%/bootstrap) build/agent/mediascale-agent

build/%/bootstrap: FORCE
	@mkdir -p $(dir $@)
	$(LAMBDA_GOFLAGS) go build -tags lambda.norpc -trimpath -ldflags="-s -w" -o $@ ./functions/$*

build/agent/mediascale-agent: FORCE
	@mkdir -p $(dir $@)
	$(LAMBDA_GOFLAGS) go build -trimpath -ldflags="-s -w" -o $@ ./agent

FORCE:

# Synthesizes one environment's template into cdk.out/ without AWS
# credentials or network.
synth: build deps
	$(CDK) synth -c env=$(ENV) --quiet --no-notices --no-version-reporting

# Synthesizes every environment into cdk.out/<env>/.
synth-all: build deps
	@for e in dev devusw2 staging prod; do \
		$(CDK) synth -c env=$$e --quiet --no-notices --no-version-reporting -o cdk.out/$$e || exit 1; \
	done

# cfn-lint on every environment's template: errors fail, warnings print.
lint-templates: synth-all
	@for e in dev devusw2 staging prod; do \
		echo "cfn-lint mediascale-$$e"; \
		cfn-lint --non-zero-exit-code error cdk.out/$$e/mediascale-$$e.template.json || exit 1; \
	done

fmt-check:
	@out=$$(gofmt -l $(GO_DIRS)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	go vet ./...

# The local-cloud package runs its clouds two at a time and takes about ten
# minutes: past go test's default ten-minute limit per package.
test-go: build deps
	go test -count=1 -timeout 25m ./...

shellcheck:
	shellcheck scripts/localcloud scripts/deps scripts/demo scripts/cdkenv .ci/run infra/media/*.sh

# The Lambda binaries must stay small and start fast: the CDK (and its
# jsii runtime) never enters a function's import graph.
check-imports:
	@if go list -deps ./functions/... | grep -q 'aws-cdk-go\|jsii-runtime-go'; then \
		echo "a Lambda package imports the CDK:"; go list -deps ./functions/... | grep 'aws-cdk-go\|jsii'; exit 1; fi
	@if go list -deps ./functions/... ./agent/... | grep -q 'mediascale/scripts/'; then \
		echo "a function or the agent links test code:"; go list -deps ./functions/... ./agent/... | grep 'mediascale/scripts/'; exit 1; fi

test: deps fmt-check vet check-imports shellcheck test-go lint-templates

# Benchmarks (never timed assertions): the controller's decision for a
# pool of 10,000 nodes; the node agent's CPU and memory with 100 sessions;
# cold start of the trigger in the local runtime,
# native and as deployed; what one node of a replayed scale-out costs in
# transitions, invocations and Lambda milliseconds; the simulator over
# fourteen days at 10 s.
bench: build deps
	go test -run '^$$' -bench Recommend10000Nodes -benchmem ./shared/capacity/
	go test -run '^$$' -bench AgentWith100Sessions -benchtime 1x ./scripts/localaws/
	go test -run '^$$' -bench TriggerColdStart -benchtime 10x ./scripts/internal/lambdaruntime/
	go test -run '^$$' -bench ScaleOutReplay -benchtime 3x ./scripts/localaws/
	go test -run '^$$' -bench Compare14DaysAt10s -benchtime 3x ./shared/simulation/
	go test -run '^$$' -bench Choose -benchtime 2s ./shared/dispatch/

# Per-environment deploy, diff and destroy with cdk.json's settings for
# ENV (region; account check when pinned): make deploy ENV=staging
# Every decoder of outside input, fuzzed for FUZZ_EXECS executions each
# (README.md, "Input limits"); a finding is saved under testdata/fuzz and
# fails the run. Go minimizes every new interesting input for up to a
# minute by default, which stalls the richer parsers (YAML, XML) on their
# first finds: ten tries each is enough to keep the corpus small.
FUZZ_EXECS ?= 1000000x
FUZZ_TARGETS = ./events:FuzzParseAlarmEvent ./events:FuzzParseOperatorEvent ./events:FuzzFailureReason \
	./shared/pool:FuzzParseYAML ./shared/health:FuzzParseStat ./shared/agent:FuzzParseCPU \
	./shared/simulation:FuzzParseTrace ./shared/simulation:FuzzLoadModel ./shared/simulation:FuzzParseShows ./events:FuzzParsePressureRound
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; echo "fuzz $$fn ($$pkg)"; \
		go test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZ_EXECS) -fuzzminimizetime 10x $$pkg || exit 1; \
	done

# The whole fault matrix (README.md, "The fault matrix") on two local
# clouds: every AWS call of the trigger, scale-out and scale-in paths
# failing with a throttle and a 5xx, for the whole run from its start or
# its middle, and for two calls only; make test runs a sample of it. The
# outcomes land in build/faultmatrix.{json,md}; ONLY=<regexp> runs the
# cases whose names match. It ends by saying how long it took.
faults: build deps
	@start=$$(date +%s); \
	FAULT_MATRIX=all FAULT_MATRIX_ONLY="$(ONLY)" FAULT_MATRIX_OUT=$(CURDIR)/build/faultmatrix.json \
		go test -count=1 -timeout 150m -run '^TestFaultMatrix$$' -v ./scripts/localaws/; rc=$$?; \
	took=$$(( $$(date +%s) - start )); echo "make faults: $$((took / 60)) min $$((took % 60)) s"; exit $$rc

deploy: build deps
	scripts/cdkenv $(ENV) deploy

diff: build deps
	scripts/cdkenv $(ENV) diff

destroy: deps
	scripts/cdkenv $(ENV) destroy

up: build deps
	POOLS="$(POOLS)" LOOP="$(LOOP)" scripts/localcloud up

down:
	scripts/localcloud down

# Invokes one deployed function on the running local cloud, like
# `sam local invoke`: make invoke FN=trigger EVENT=testevents/trigger/alarm-connections-high.json
invoke:
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=<function> EVENT=<file>"; exit 2; }
	scripts/localcloud invoke $(FN) $(EVENT)

# Replays an alarm through the deployed rule's target on the running local
# cloud and follows the real state machine: make replay EVENT=testevents/trigger/alarm-connections-high.json
replay:
	@test -n "$(EVENT)" || { echo "usage: make replay EVENT=<file>"; exit 2; }
	scripts/localcloud replay $(EVENT)

# Operator controls (scripts/msctl). They act on the running local cloud
# when it is up, and on the account of the AWS configuration otherwise or
# with AWS=1: make fleet | make pause POOL=x REASON=.. | make resume POOL=x |
# make scale POOL=x DIRECTION=out COUNT=2 REASON=.. [DRY_RUN=1] | make status EXECUTION=arn
MSCTL = set -e; go build -o build/tools/msctl ./scripts/msctl; \
	if [ -z "$(AWS)" ] && [ -f .localcloud/env ]; then . ./.localcloud/env; fi; build/tools/msctl --env $(ENV)

fleet:
	@$(MSCTL) fleet $(if $(POOL),--pool $(POOL))

pause:
	@$(MSCTL) pause $(POOL) --reason "$(REASON)"

resume:
	@$(MSCTL) resume $(POOL)

scale:
	@$(MSCTL) scale $(POOL) $(DIRECTION) $(COUNT) $(if $(DRY_RUN),--dry-run) --reason "$(REASON)"

status:
	@$(MSCTL) status $(EXECUTION)

# Announced shows (README.md, "Announced shows"): make show-add POOL=x
# START=2026-12-05T20:00:00Z PEAK=40000 [RAMP=2m] REASON=.. | make shows |
# make show-cancel POOL=x ID=show-...
show-add:
	@$(MSCTL) show add $(POOL) --start "$(START)" --peak "$(PEAK)" $(if $(RAMP),--ramp $(RAMP)) $(if $(ID),--id $(ID)) --reason "$(REASON)"

shows:
	@$(MSCTL) show list $(if $(POOL),--pool $(POOL))

show-cancel:
	@$(MSCTL) show cancel $(POOL) $(ID)

# Replays a traffic trace through the pool's policy and its peers'
# (README.md, "Simulating a pool"); no AWS needed.
simulate:
	@go run ./scripts/msctl simulate --pools $(or $(POOLS),infra/config/prod.yaml) --pool $(POOL) --trace $(TRACE) $(if $(MODEL),--model $(MODEL)) $(if $(SHOWS),--shows $(SHOWS)) $(if $(SHOW_SCALE),--show-scale $(SHOW_SCALE)) $(if $(OUT),--out $(OUT))

demo: build deps
	scripts/demo

clean:
	rm -rf build cdk.out .localcloud
