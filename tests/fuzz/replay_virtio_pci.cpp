// The virtio-pci register fuzzer compiled as a plain function for the corpus replay.
#define FUZZ_ENTRY virtio_pci_fuzz_one
#include "tests/fuzz/virtio_pci_fuzz.cpp"
