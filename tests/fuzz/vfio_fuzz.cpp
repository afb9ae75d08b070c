// libFuzzer target: a VFIO passthrough function's guest-facing side in any
// order, over the unit tests' fake NVMe (tests/unit/vfio/fake_device_io.hpp)
// and fake hypervisor. The input (after a 16-byte header) is a script of
// accesses, 12 bytes each: kind, size, offset, value. Kinds: config space
// reads and writes (command register, BARs, ROM, the capability chain, MSI-X
// control, PM, pass-through bytes), BAR 0 (registers, the trapped MSI-X
// table and PBA) and BAR 4 (I/O) reads and writes at any offset, any BAR
// index, BAR moves (memory slots), and the device, VFIO or KVM refusing
// from then on or not. Header byte 0 picks the device: bit 0 no INTx, bit 1
// no reset method. Every input must end with the device destroyed, no
// exception out of an access, and nothing the VMM owns written to the
// device's config space (BARs, ROM, the MSI and MSI-X capabilities, PM);
// ASan/UBSan catch memory errors.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "devices/vfio/vfio_pci_device.hpp"
#include "tests/fuzz/register_script.hpp"
#include "tests/unit/pci/fake_hypervisor.hpp"
#include "tests/unit/vfio/fake_device_io.hpp"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

namespace {

using namespace devices;
using namespace devices::vfio;

namespace fuzz = pci::fuzz;
using fuzz::Op;

constexpr std::size_t kHeaderBytes = 16;

struct Target {
    VfioPciDevice& device;
    testing::FakeDeviceIo& io;
    pci::testing::FakeHypervisor& hypervisor;
    std::optional<std::uint64_t> bar0;
    std::optional<std::uint64_t> bar4;
};

void set_knobs(Target& target, std::uint64_t value) {
    {
        std::lock_guard lock(target.hypervisor.mutex);
        target.hypervisor.fail_routing = (value & 1) != 0;
        target.hypervisor.fail_memory_slots = (value & 2) != 0;
    }
    std::lock_guard lock(target.io.mutex);
    target.io.fail_irqs = (value & 4) != 0;
    target.io.fail_reads = (value & 8) != 0;
    target.io.fail_writes = (value & 16) != 0;
}

void run(Target& target, const Op& op) {
    auto& device = target.device;
    fuzz::Access access(op);
    const auto bar = access.bar();
    const auto config = access.config();
    const auto config_offset = access.config_offset;
    switch (op.kind % 11) {
        case 0:
            device.config_write(config_offset, config);
            break;
        case 1:
            device.config_read(config_offset, config);
            break;
        case 2:
            // Mostly the table and PBA pages, sometimes past the BAR's end.
            device.bar_write(0, op.offset % 0x4800, bar);
            break;
        case 3:
            device.bar_read(0, op.offset % 0x4800, bar);
            break;
        case 4:
            device.bar_write(4, op.offset % 0x40, bar);
            break;
        case 5:
            device.bar_read(4, op.offset % 0x40, bar);
            break;
        case 6: {
            std::optional<std::uint64_t> next;
            if (op.value & 1) next = 0x40'0000'0000 + (op.value & 0xffc000);
            device.bar_moved(0, target.bar0, next);
            target.bar0 = next;
            break;
        }
        case 7: {
            std::optional<std::uint64_t> next;
            if (op.value & 1) next = 0xc000 + (op.value & 0x3fe0);
            device.bar_moved(4, target.bar4, next);
            target.bar4 = next;
            break;
        }
        case 8: {
            // Any BAR index, any 64-bit offset.
            const auto index = static_cast<std::uint8_t>(op.offset);
            if (op.size_code & 0x80) {
                device.bar_write(index, op.value, bar);
            } else {
                device.bar_read(index, op.value, bar);
            }
            break;
        }
        case 9:
            // MSI-X control, as Linux writes it (Enable, Function Mask).
            device.config_write(0x82, std::span(access.bytes).first(2));
            break;
        default:
            set_knobs(target, op.value);
            break;
    }
}

}  // namespace

extern "C" int FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
    const std::uint8_t selector = size > 0 ? data[0] : 0;
    auto hypervisor = std::make_shared<pci::testing::FakeHypervisor>();
    auto router = std::make_shared<pci::MsiRouter>(hypervisor);
    auto io = std::make_unique<testing::FakeDeviceIo>();
    auto& fake = *io;
    if (selector & 1) fake.intx_count = 0;
    if (selector & 2) fake.can_reset = false;
    {
        VfioPciDevice device(std::move(io), router, 4096);
        device.attached(1, 17);
        Target target{device, fake, *hypervisor, std::nullopt, std::nullopt};
        fuzz::for_each_op(data, size, kHeaderBytes, [&](const Op& op) { run(target, op); });
        // What the VMM owns never reached the device, whatever the script did.
        if (fake.config_written(0x10, 0x24 - 0x10 + 4) || fake.config_written(0x30, 4) ||
            fake.config_written(0x40, 8) || fake.config_written(0x50, 14) ||
            fake.config_written(0x80, 12)) {
            __builtin_trap();
        }
        set_knobs(target, 0);
    }
    // Teardown released every irqfd, route and memory slot.
    if (!hypervisor->irqfds.empty() || !hypervisor->memory_slots.empty() ||
        router->routed_count() != 0) {
        __builtin_trap();
    }
    return 0;
}
