// The VFIO passthrough fuzzer compiled as a plain function for the corpus replay.
#define FUZZ_ENTRY vfio_fuzz_one
#include "tests/fuzz/vfio_fuzz.cpp"
