// The virtqueue fuzzer compiled as a plain function for the corpus replay.
#define FUZZ_ENTRY virtqueue_fuzz_one
#include "tests/fuzz/virtqueue_fuzz.cpp"
