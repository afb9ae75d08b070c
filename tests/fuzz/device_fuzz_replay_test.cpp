// Runs the virtio-console, virtio-pci and VFIO passthrough fuzz entry
// points under gtest in every build: seeds that do what Linux does (a
// console with buffers both ways; the whole virtio-pci bring-up of rng and
// blk down to a served request and a reset; an NVMe driver's probe of a
// passthrough function, on MSI-X or INTx), deterministic mutations of them,
// noise, and any saved inputs under tests/fuzz/corpus/<target>/.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "devices/virtio/blk/block_request.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "tests/fuzz/corpus_files.hpp"

extern "C" int console_fuzz_one(const std::uint8_t* data, std::size_t size);
extern "C" int virtio_pci_fuzz_one(const std::uint8_t* data, std::size_t size);
extern "C" int vfio_fuzz_one(const std::uint8_t* data, std::size_t size);

namespace {

using devices::virtio::Descriptor;
using devices::virtio::kDescNext;
using devices::virtio::kDescWrite;

// Guest address A is input[16 + A].
struct Input {
    std::vector<std::uint8_t> bytes = std::vector<std::uint8_t>(16 + 0xa000, 0);
    void put16(std::size_t at, std::uint16_t value) { std::memcpy(&bytes[at], &value, 2); }
    std::uint8_t* guest(std::uint64_t address) { return &bytes[16 + address]; }
    // A ring of 8 at desc/avail/used with `descriptors`, head 0 available.
    void ring(std::uint64_t desc, std::uint64_t avail, std::initializer_list<Descriptor> list) {
        std::size_t i = 0;
        for (const auto& d : list) std::memcpy(guest(desc + 16 * i++), &d, sizeof(d));
        const std::uint16_t ring[3] = {0, 1, 0};
        std::memcpy(guest(avail), ring, sizeof(ring));
    }
};

std::vector<std::uint8_t> console_seed(std::uint8_t script_shift) {
    Input input;
    input.bytes[0] = 3;  // queues of 8
    input.put16(2, 0x1000 / 2);
    input.put16(4, 0x2000 / 2);
    input.put16(6, 0x3000 / 2);
    input.put16(10, 0x5000 / 2);
    input.put16(12, 0x6000 / 2);
    input.put16(14, 0x7000 / 2);
    input.bytes[8] = 3;  // event idx + indirect
    input.ring(0x1000, 0x2000, {{0x8000, 64, kDescWrite, 0}});
    input.ring(0x5000, 0x6000, {{0x9000, 100, kDescNext, 1}, {0x9100, 50, 0, 0}});
    // The backend's script: kicks, resumes and readiness in turn.
    for (std::uint8_t i = 0; i < 64; ++i)
        *input.guest(i) = static_cast<std::uint8_t>(i + script_shift);
    return input.bytes;
}

// Builds a register script: BAR 0 / config / BAR 2 accesses as the virtio
// fuzzer encodes them (kind, size code, offset, value).
class Script {
  public:
    explicit Script(Input& input) : input_(input) {}
    void op(std::uint8_t kind, std::uint8_t size_code, std::uint16_t offset, std::uint64_t value) {
        std::uint8_t* at = input_.guest(12 * count_++);
        at[0] = kind;
        at[1] = size_code;
        std::memcpy(at + 2, &offset, 2);
        std::memcpy(at + 4, &value, 8);
    }
    void common(std::uint16_t offset, std::uint8_t size_code, std::uint64_t value) {
        op(0, size_code, offset, value);
    }

  private:
    Input& input_;
    std::size_t count_ = 0;
};

std::vector<std::uint8_t> pci_seed(bool blk, bool msix) {
    Input input;
    input.bytes[9] = blk ? 1 : 0;
    Script script(input);
    script.op(2, 1, 0x04, 0x06);  // command: memory + bus master
    script.op(6, 0, 0, 1);        // BAR 0 decoded: ioeventfds
    if (msix) {
        script.op(2, 1, 0x42, 0x8000);  // MSI-X enable (the first capability, at 0x40)
        for (std::uint16_t v = 0; v < 3; ++v) {
            script.op(4, 2, static_cast<std::uint16_t>(16 * v), 0xfee0'0000);
            script.op(4, 2, static_cast<std::uint16_t>(16 * v + 8), 0x40 + v);
            script.op(4, 2, static_cast<std::uint16_t>(16 * v + 12), 0);
        }
    }
    script.common(0x14, 0, 0);  // reset
    script.common(0x14, 0, 1);  // ACKNOWLEDGE
    script.common(0x14, 0, 3);  // DRIVER
    script.common(0x08, 2, 0);
    script.common(0x0c, 2, 1u << 28 | 1u << 29);  // INDIRECT_DESC, EVENT_IDX
    script.common(0x08, 2, 1);
    script.common(0x0c, 2, 1);    // VERSION_1
    script.common(0x14, 0, 0xb);  // FEATURES_OK
    script.common(0x10, 1, 0);    // config vector 0
    script.common(0x16, 1, 0);    // queue 0
    script.common(0x18, 1, 8);
    script.common(0x1a, 1, 1);
    script.common(0x20, 3, 0x1000);
    script.common(0x28, 3, 0x2000);
    script.common(0x30, 3, 0x3000);
    script.common(0x1c, 1, 1);
    script.common(0x14, 0, 0xf);   // DRIVER_OK
    script.common(0x3000, 1, 0);   // notify queue 0
    script.op(1, 0, 0x1000, 0);    // ISR read
    script.op(3, 1, 0x06, 0);      // PCI status
    script.op(2, 1, 0x04, 0x402);  // bus mastering off, INTx disabled
    script.op(1, 0, 0x14, 0);      // status: NEEDS_RESET
    script.op(2, 1, 0x04, 0x06);   // on again
    script.common(0x14, 0, 0);     // reset
    if (blk) {
        const std::uint32_t flush = devices::virtio::kBlkTypeFlush;
        std::memcpy(input.guest(0x4000), &flush, 4);
        input.ring(0x1000, 0x2000, {{0x4000, 16, kDescNext, 1}, {0x4100, 1, kDescWrite, 0}});
    } else {
        input.ring(0x1000, 0x2000, {{0x4000, 64, kDescWrite, 0}});
    }
    return input.bytes;
}

// What Linux's PCI core and nvme driver do to a passthrough function: size
// the BARs with decoding off, enable memory and bus mastering, bring MSI-X
// up masked, program and unmask three vectors (or stay on INTx), touch the
// doorbells and the PBA, move BAR 0, tear MSI-X down; `knobs` makes the
// device, VFIO or KVM refuse halfway.
std::vector<std::uint8_t> vfio_seed(bool msix, std::uint8_t knobs) {
    Input input;
    input.bytes[0] = msix ? 0 : 1;
    Script script(input);
    script.op(0, 1, 0x04, 0x0000);  // decoding off
    script.op(6, 0, 0, 0);          // the bus stops decoding BAR 0
    script.op(0, 2, 0x10, 0xffffffff);
    script.op(1, 2, 0x10, 0);
    script.op(0, 2, 0x14, 0xffffffff);
    script.op(0, 2, 0x10, 0x0000'0004);
    script.op(0, 2, 0x14, 0x40);
    script.op(0, 2, 0x30, 0xfffff800);  // ROM sizing: hidden
    script.op(0, 1, 0x04, 0x0406);      // memory + bus master + INTx disable
    script.op(6, 0, 0, 1);              // decoded again
    script.op(1, 1, 0x44, 0);           // PM status
    script.op(0, 1, 0x44, 0x0000);      // D0
    script.op(10, 0, 0, knobs);
    if (msix) {
        script.op(9, 1, 0, 0xc000);  // enable + function mask
        for (std::uint16_t v = 0; v < 3; ++v) {
            script.op(2, 2, static_cast<std::uint16_t>(0x2000 + 16 * v), 0xfee0'0000);
            script.op(2, 2, static_cast<std::uint16_t>(0x2000 + 16 * v + 4), 0);
            script.op(2, 2, static_cast<std::uint16_t>(0x2000 + 16 * v + 8), 0x4020 + v);
            script.op(2, 2, static_cast<std::uint16_t>(0x2000 + 16 * v + 12), 0);
        }
        script.op(9, 1, 0, 0x8000);  // function mask off
    } else {
        script.op(0, 1, 0x04, 0x0006);  // INTx enabled
    }
    script.op(2, 2, 0x1000, 1);  // a doorbell (trapped when no slot)
    script.op(3, 3, 0x3000, 0);  // PBA
    script.op(2, 3, 0x3000, ~0ull);
    script.op(6, 0, 0, 0x4001);  // BAR 0 moves
    script.op(2, 2, 0x200c, 1);  // mask vector 0
    script.op(3, 3, 0x2000, 0);
    script.op(9, 1, 0, 0x0000);  // MSI-X off: INTx back
    script.op(7, 0, 0, 1);       // the I/O BAR decoded
    script.op(4, 0, 0x10, 0x5a);
    script.op(5, 0, 0x10, 0);
    script.op(8, 3, 0x06, 0);  // a BAR that does not exist
    script.op(8, 0x83, 0x00, ~0ull - 3);
    return input.bytes;
}

std::vector<std::vector<std::uint8_t>> corpus(const char* name,
                                              const std::vector<std::vector<std::uint8_t>>& seeds,
                                              std::size_t mutate_below, int count) {
    std::vector<std::vector<std::uint8_t>> inputs = seeds;
    std::mt19937 random(20250101);
    for (int i = 0; i < count; ++i) {
        std::vector<std::uint8_t> input = (i % 4 != 3)
                                              ? seeds[i % seeds.size()]
                                              : std::vector<std::uint8_t>(64 + random() % 4096);
        const int flips = 1 + static_cast<int>(random() % 16);
        for (int f = 0; f < flips; ++f) {
            const std::size_t at = random() % std::min(input.size(), mutate_below);
            input[at] = static_cast<std::uint8_t>(random());
        }
        inputs.push_back(std::move(input));
    }
    devices::virtio::fuzz::append_corpus_files(name, inputs);
    return inputs;
}

void replay(int (*entry)(const std::uint8_t*, std::size_t),
            const std::vector<std::vector<std::uint8_t>>& inputs) {
    for (const auto& input : inputs) entry(input.empty() ? nullptr : input.data(), input.size());
    entry(nullptr, 0);  // libFuzzer's empty input
}

TEST(FuzzReplay, Console) {
    replay(
        console_fuzz_one,
        corpus("console_fuzz", {console_seed(0), console_seed(1), console_seed(2), console_seed(3)},
               16 + 0x9200, 1500));
}

TEST(FuzzReplay, VirtioPciRegisters) {
    // Fewer: each input starts (and joins) a worker thread.
    replay(virtio_pci_fuzz_one, corpus("virtio_pci_fuzz",
                                       {pci_seed(false, true), pci_seed(false, false),
                                        pci_seed(true, true), pci_seed(true, false)},
                                       16 + 12 * 64, 400));
}

TEST(FuzzReplay, VfioPassthrough) {
    replay(vfio_fuzz_one, corpus("vfio_fuzz",
                                 {vfio_seed(true, 0), vfio_seed(false, 0), vfio_seed(true, 0x1f),
                                  vfio_seed(true, 0x4), vfio_seed(false, 0x2)},
                                 16 + 12 * 64, 400));
}

}  // namespace
