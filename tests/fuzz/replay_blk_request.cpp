// The virtio-blk fuzzer compiled as a plain function for the corpus replay.
#define FUZZ_ENTRY blk_request_fuzz_one
#include "tests/fuzz/blk_request_fuzz.cpp"
