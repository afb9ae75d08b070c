// libFuzzer target: the virtio-pci transport's guest-facing registers in any
// order. The input (after the 16-byte header) is both guest RAM and a script
// of register accesses, 12 bytes each: kind, size, offset, value. Kinds:
// BAR 0 (common config, ISR, device config, notify) and BAR 2 (MSI-X table,
// PBA) reads and writes, config space reads and writes (command register,
// MSI-X control, the PCI_CFG window), BAR 0 moves (ioeventfds), and KVM
// refusing routes from then on or not. The device is virtio-rng or a
// two-queue virtio-blk over memory (selector bit 0); once the script sets
// DRIVER_OK a real worker thread serves the rings the script programmed,
// concurrently with the accesses that follow, as vCPUs and the worker do.
// Every input must end with the device destroyed (its worker joined) and no
// exception out of an access; ASan/UBSan catch memory errors.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "devices/virtio/blk/virtio_blk.hpp"
#include "devices/virtio/rng/virtio_rng.hpp"
#include "devices/virtio/virtio_pci_device.hpp"
#include "tests/fuzz/fuzz_guest.hpp"
#include "tests/fuzz/register_script.hpp"
#include "tests/unit/pci/fake_hypervisor.hpp"
#include "tests/unit/virtio/memory_backend.hpp"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

namespace {

using namespace devices;
using namespace devices::virtio;

using pci::fuzz::Op;

// The first 16 bytes are fuzz::load()'s header.
constexpr std::size_t kHeaderBytes = 16;

std::unique_ptr<VirtioDevice> make_device(std::uint8_t selector) {
    if ((selector & 1) == 0) return std::make_unique<VirtioRng>();
    BlockDeviceOptions options;
    options.serial = "fuzz";
    options.queues = 2;
    options.queue_size = 16;
    return std::make_unique<VirtioBlk>(std::make_unique<testing::MemoryBackend>(32 * 1024),
                                       options);
}

struct Target {
    VirtioPciDevice& device;
    pci::testing::FakeHypervisor& hypervisor;
    std::optional<std::uint64_t> mapped;  // where BAR 0 is decoded
};

void run(Target& target, const Op& op) {
    auto& device = target.device;
    pci::fuzz::Access access(op);
    const auto bar = access.bar();
    const auto config = access.config();
    const auto config_offset = access.config_offset;
    switch (op.kind % 8) {
        case 0:
            device.bar_write(VirtioPciDevice::kBarRegisters,
                             op.offset % VirtioPciDevice::kBarRegistersSize, bar);
            break;
        case 1:
            device.bar_read(VirtioPciDevice::kBarRegisters,
                            op.offset % VirtioPciDevice::kBarRegistersSize, bar);
            break;
        case 2:
            device.config_write(config_offset, config);
            break;
        case 3:
            device.config_read(config_offset, config);
            break;
        case 4:
            device.bar_write(VirtioPciDevice::kBarMsix, op.offset % VirtioPciDevice::kBarMsixSize,
                             bar);
            break;
        case 5:
            device.bar_read(VirtioPciDevice::kBarMsix, op.offset % VirtioPciDevice::kBarMsixSize,
                            bar);
            break;
        case 6: {
            // The bus moves BAR 0 (or stops decoding it).
            std::optional<std::uint64_t> next;
            if (op.value & 1) next = 0x40'0000'0000 + (op.value & 0xff0000);
            device.bar_moved(VirtioPciDevice::kBarRegisters, target.mapped, next);
            target.mapped = next;
            break;
        }
        default: {
            std::lock_guard lock(target.hypervisor.mutex);
            target.hypervisor.fail_routing = (op.value & 1) != 0;
            break;
        }
    }
}

}  // namespace

extern "C" int FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
    const auto setup = fuzz::load(data, size);
    auto hypervisor = std::make_shared<pci::testing::FakeHypervisor>();
    auto router = std::make_shared<pci::MsiRouter>(hypervisor);
    {
        VirtioPciDevice device(make_device(setup.selector), fuzz::guest_memory(), router);
        device.attached(3, 19);
        Target target{device, *hypervisor, std::nullopt};
        pci::fuzz::for_each_op(data, size, kHeaderBytes, [&](const Op& op) { run(target, op); });
        // Tear-down (the worker joined, irqfds and routes released) with
        // KVM accepting routes again.
        std::lock_guard lock(hypervisor->mutex);
        hypervisor->fail_routing = false;
    }
    return 0;
}
