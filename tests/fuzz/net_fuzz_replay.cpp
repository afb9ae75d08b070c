// The virtio-net fuzzer compiled as a plain function for the corpus replay.
#define FUZZ_ENTRY net_fuzz_one
#include "tests/fuzz/net_fuzz.cpp"
