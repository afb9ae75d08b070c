// The virtio-console fuzzer compiled as a plain function for the corpus replay.
#define FUZZ_ENTRY console_fuzz_one
#include "tests/fuzz/console_fuzz.cpp"
