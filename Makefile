# moor's front door. `make test` is the test command; `make run` the main job.
#
#   make            build (RelWithDebInfo) into build/
#   make test       install missing deps, build, run every test, then the
#                   ASan+UBSan build's tests
#   make run        build and start a local cluster (see README)
#   make sim        a long simulator campaign
#   make fuzz       build the libFuzzer targets with clang and run each
#   make bench      moor beside real etcd 3.4 (make bench-quick: short)
#   make chaos      a long chaos campaign against moord
#   make format     clang-format every C file in place

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
WERROR     ?= ON
CMAKE_ARGS ?=
SIM_SEEDS  ?= 20000
FUZZ_SECONDS ?= 60
RUN_MEMBERS ?= 3

C_SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

.PHONY: all build deps test test-unit test-asan test-fuzz run sim fuzz bench \
        bench-quick \
        chaos format format-check clean

all: build

deps:
	bash scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	      -DMOOR_WERROR=$(WERROR) $(CMAKE_ARGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMOOR_SANITIZE=ON \
	      -DMOOR_WERROR=$(WERROR) $(CMAKE_ARGS)

FUZZ_CI_SECONDS ?= 10

test: deps
	$(MAKE) test-unit
	$(MAKE) test-asan
	$(MAKE) test-fuzz

# A short libFuzzer run of every fuzz target (the long one is `make fuzz`).
test-fuzz: $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	bash scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_CI_SECONDS) --no-merge

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) -LE no-asan

run: build
	bash scripts/run-cluster.sh --members $(RUN_MEMBERS) $(BUILD)

sim: build
	$(BUILD)/bin/moor-sim --seeds $(SIM_SEEDS) --nodes 5

$(FUZZ_BUILD)/CMakeCache.txt:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	      -DMOOR_FUZZ=ON -DMOOR_SANITIZE=ON -DMOOR_WERROR=$(WERROR) $(CMAKE_ARGS)

fuzz: $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	bash scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# moor beside real etcd 3.4 (bench/compare.sh; Release build in
# build-release/): `make bench` (< 15 min), `make bench QUICK=1` or
# `make bench-quick` (< 3 min). BENCH_ARGS go to compare.sh.
bench:
	bash bench/compare.sh $(if $(QUICK),--quick) $(BENCH_ARGS)

bench-quick:
	bash bench/compare.sh --quick $(BENCH_ARGS)

# A long chaos campaign (~90 min): every nemesis, three histories each, 3
# members behind the loopback proxy; then every nemesis netns mode can
# make, two histories each, 5 members in network namespaces (falls back to
# the proxy when not root).  Both with the lease workload.
CHAOS_NEMESES = kill,kill-all,pause,partition-leader,partition-halves,partition-bridge,partition-oneway,loss,torn-wal,disk-full,clock-jump,member,mix
chaos: build
	@rc=0; \
	tests/chaos/run.sh --duration 60 --runs 3 --seed 100 --lease-clients 2 \
	  --moord $(CURDIR)/$(BUILD)/bin/moord --nemesis $(CHAOS_NEMESES),delay || rc=1; \
	tests/chaos/run.sh --duration 60 --runs 2 --seed 200 --lease-clients 2 \
	  --members 5 --net netns --moord $(CURDIR)/$(BUILD)/bin/moord \
	  --nemesis $(CHAOS_NEMESES) || rc=1; \
	exit $$rc

format:
	clang-format -i $(C_SOURCES)

format-check:
	bash scripts/format-check.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
