# Crucible's entry points. The two that matter:
#   make demo   install what is missing, build, start the local stack, run a task
#   make test   install what is missing, build, run every test (what CI runs)
BUILD ?= build
CXX_COMPILER ?= clang++
IMAGE ?= localhost/crucible/busybox:latest
JOBS ?= $(shell nproc)

.PHONY: all bootstrap configure build test fuzz lint format demo up down clean

all: build

bootstrap:
	scripts/bootstrap

configure: bootstrap
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_CXX_COMPILER=$(CXX_COMPILER) \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: configure
	cmake --build $(BUILD) -j $(JOBS)

lint: bootstrap
	node_modules/.bin/buf lint proto
	node_modules/.bin/buf format --diff --exit-code proto
	git ls-files -z '*.cc' '*.h' | xargs -0 clang-format --dry-run --Werror

# Formats every tracked .cc and .h in place (.clang-format: Google).
format:
	git ls-files -z '*.cc' '*.h' | xargs -0 clang-format -i

# Every test but the timed fuzzing (label fuzz-timed; the fuzz targets'
# corpus replays, label fuzz, are in).
test: build lint
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600 --output-junit junit.xml -LE fuzz-timed

# Fuzzes each target for CRUCIBLE_FUZZ_SECONDS (60 by default; a CMake cache
# variable); findings go to $(BUILD)/fuzz/NAME/.
fuzz: build
	cd $(BUILD) && ctest --output-on-failure -L fuzz-timed

up: build
	deploy/local/up

down:
	deploy/local/down

demo: up
	@echo
	@echo "== a sample task: a hardened busybox container, through the server, worker, executor and proxy"
	$(BUILD)/bin/crucible --server=127.0.0.1:$${CRUCIBLE_SERVER_PORT:-8080} \
	  --tls-ca $(CURDIR)/.crucible/tls/ca.pem --token "$$(cat $(CURDIR)/.crucible/demo-token)" submit \
	  --image $(IMAGE) --timeout 30s -- \
	  sh -c 'echo "hello from task container: uid=$$(id -u), root fs: $$(touch /x 2>&1 || true)"; echo "and this went to stderr" >&2'
	@echo
	@echo "== the stack keeps running (mutual TLS, tokens; CLI: export CRUCIBLE_TLS_CA=$(CURDIR)/.crucible/tls/ca.pem CRUCIBLE_TOKEN=\$$(cat $(CURDIR)/.crucible/demo-token)); stop it with: make down"

clean:
	rm -rf $(BUILD)
