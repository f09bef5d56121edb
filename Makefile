# reformer: one binary and one test runner.
#   make            build ./reformer (optimised for this CPU)
#   make test       build and run the tests (last line: N passed, N failed)
#   make asan       tests under AddressSanitizer and UBSan
#   make fuzz       libFuzzer harnesses of every reader (clang), in build-fuzz/
#   make fuzz-smoke each harness for 20 s from its seed corpus (FUZZ_SECONDS=N to change)
#   make ARCH=-march=x86-64-v3   a portable AVX2 build (e.g. to carry to another machine)
#   make MPI=1      ./reformer that also trains as ranks of mpirun (Open MPI: libopenmpi-dev),
#                   and its tests, which include the mpirun ones; objects in build-mpi/
#   make DNNL=0     a build on OpenBLAS alone, without oneDNN (train.precision bf16 refused)
CC ?= gcc
# Debian's gcc 12.2 at -O3 with 512-bit vectors realigns stack frames to 64 bytes and then
# loads from a stack array with vmovapd at a 32-byte-misaligned address (SIGSEGV, a compiler
# bug; tests/test_toolchain.c keeps the reproduction). -Wa,-muse-unaligned-vector-move makes
# the assembler emit unaligned moves, which are as fast on aligned data, so the bug cannot
# bite at any vector width: 512-bit vectors then pass the reproduction and train B6 at 4096
# 1.3% faster than the earlier 256-bit workaround on 2 cores of an AMD EPYC (Zen 5) (3382 and 3389 vs
# 3346 and 3336 tokens/s, alternating `reformer bench --seq 4096 --steps 4 --threads 2`).
ARCH ?= -march=native -mprefer-vector-width=512 -Wa,-muse-unaligned-vector-move
OPT ?= -O3
# No -ffast-math: the masks use large negative sentinels and NaN checks must work.
# -fno-trapping-math changes no value (we never read the floating-point exception flags), but
# without it gcc will not turn the selects of exp_approx / erf_approx and the attention masks
# into blends where vectors have no masks: with x86-64-v3 (AVX2) the GELU loops stayed scalar
# and took half of a B6 step on an Intel Xeon with AVX-512 (0.86 of 1.58 s at 4096 tokens, 2 threads).
CFLAGS ?= $(OPT) $(ARCH) -fno-trapping-math -g -std=gnu11 -fopenmp -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
LDLIBS = -lopenblas -lcjson -lz -lm
# oneDNN (Debian's libdnnl-dev) runs the bf16 products (train.precision bf16); found by its
# header, or DNNL=0 for a build on OpenBLAS alone (every test passes in both)
DNNL ?= $(if $(wildcard /usr/include/oneapi/dnnl/dnnl.h),1,0)
ifeq ($(DNNL),1)
CFLAGS += -DREFORMER_DNNL
LDLIBS += -ldnnl
endif
BUILD ?= build
BIN ?= reformer
ifeq ($(MPI),1)
CC = mpicc
CFLAGS += -DREFORMER_MPI
BUILD = build-mpi
endif

CORE = $(wildcard core/*.c)
DATA = $(wildcard data/*.c)
CMD = $(wildcard cmd/*.c)
TESTS = $(wildcard tests/*.c)

LIB_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(CORE) $(DATA) $(filter-out cmd/main.c,$(CMD)))
MAIN_OBJ = $(BUILD)/cmd/main.o
TEST_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(TESTS))

all: $(BIN)

# ./reformer of a build with MPI and one without share a name: link again when the last
# link came from the other build
ifneq ($(shell cat $(BIN).build 2>/dev/null),$(BUILD))
.PHONY: $(BIN)
endif
$(BIN): $(LIB_OBJ) $(MAIN_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
	echo $(BUILD) > $@.build

$(BUILD)/tests/run: $(LIB_OBJ) $(TEST_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c $(wildcard core/*.h data/*.h cmd/*.h tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

test: $(BIN) $(BUILD)/tests/run
	REFORMER_BIN=./$(BIN) $(BUILD)/tests/run

asan:
	$(MAKE) BUILD=build-asan BIN=build-asan/reformer OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer" test

# Fuzzing: clang's libFuzzer with ASan, UBSan and float-to-int overflow checks (gcc's
# UBSan lacks -fsanitize=float-cast-overflow), any report fatal.
FUZZ_CC ?= clang
FUZZ_FLAGS = -g -O1 -std=gnu11 -fopenmp -fno-omit-frame-pointer \
	-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -Wno-pass-failed
FUZZERS = $(patsubst tests/fuzz/fuzz_%.c,build-fuzz/fuzz_%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_OBJ = $(patsubst %.c,build-fuzz/%.o,$(CORE) $(DATA) $(filter-out cmd/main.c,$(CMD)))
FUZZ_SECONDS ?= 20

build-fuzz/%.o: %.c $(wildcard core/*.h data/*.h cmd/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(LDLIBS)

fuzz: $(FUZZERS)

fuzz-smoke: fuzz
	tests/fuzz/smoke.sh $(FUZZ_SECONDS)

clean:
	rm -rf build build-mpi build-asan build-fuzz reformer reformer.build

.PHONY: all test asan fuzz fuzz-smoke clean
