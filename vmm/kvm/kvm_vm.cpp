#include "vmm/kvm/kvm_vm.hpp"

#include <sys/ioctl.h>

#include <algorithm>
#include <memory>

#include "base/error.hpp"
#include "vmm/kvm/flex_array_abi.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm::kvm {

KvmVm KvmVm::create(const KvmSystem& system) {
    // Machine type 0: the default x86 VM.
    base::UniqueFd fd(::ioctl(system.fd(), KVM_CREATE_VM, 0));
    if (!fd) base::throw_errno("KVM_CREATE_VM");
    KvmVm vm(std::move(fd));

    // Both addresses lie in the MMIO hole below 4 GiB, never RAM: KVM uses
    // them for real-mode emulation on Intel and ignores them on AMD.
    if (::ioctl(vm.fd(), KVM_SET_TSS_ADDR, x86::kKvmTssAddress) != 0) {
        base::throw_errno("KVM_SET_TSS_ADDR at {:#x}", x86::kKvmTssAddress);
    }
    std::uint64_t identity_map = x86::kKvmIdentityMapAddress;
    if (::ioctl(vm.fd(), KVM_SET_IDENTITY_MAP_ADDR, &identity_map) != 0) {
        base::throw_errno("KVM_SET_IDENTITY_MAP_ADDR at {:#x}", identity_map);
    }
    return vm;
}

namespace {

// KVM_USER_MEM_SLOTS was 509 on x86 until Linux 5.x made it 32764; the lower
// figure is plenty (RAM takes two, a passthrough BAR up to three) and holds
// on every kernel.
constexpr std::uint32_t kMaxMemorySlots = 509;

}  // namespace

std::uint32_t KvmVm::allocate_slot() const {
    std::lock_guard lock(slots_->mutex);
    auto& used = slots_->used;
    auto free = std::find(used.begin(), used.end(), false);
    if (free != used.end()) {
        *free = true;
        return static_cast<std::uint32_t>(free - used.begin());
    }
    if (used.size() >= kMaxMemorySlots) {
        throw base::Error("all {} KVM memory slots are in use", kMaxMemorySlots);
    }
    used.push_back(true);
    return static_cast<std::uint32_t>(used.size() - 1);
}

void KvmVm::release_slot(std::uint32_t slot) const {
    std::lock_guard lock(slots_->mutex);
    if (slot < slots_->used.size()) slots_->used[slot] = false;
}

void KvmVm::map_guest_memory(const GuestMemory& memory) {
    for (const auto& region : memory.regions()) {
        // The host range stays mapped for the VM's whole life: GuestMemory
        // outlives the KvmVm in Machine.
        add_memory_slot(region.guest_address, {region.host_address, region.size}, false);
    }
}

std::uint32_t KvmVm::add_memory_slot(std::uint64_t gpa, std::span<std::uint8_t> host,
                                     bool read_only) const {
    const std::uint32_t number = allocate_slot();
    kvm_userspace_memory_region slot{};
    slot.slot = number;
    slot.flags = read_only ? KVM_MEM_READONLY : 0;
    slot.guest_phys_addr = gpa;
    slot.memory_size = host.size();
    slot.userspace_addr = reinterpret_cast<std::uint64_t>(host.data());
    // Safe: KVM only records the range; the caller keeps it mapped until
    // remove_memory_slot() (documented contract).
    if (::ioctl(fd(), KVM_SET_USER_MEMORY_REGION, &slot) != 0) {
        const int error = errno;
        release_slot(number);
        throw base::SystemError(
            error, fmt::format("KVM_SET_USER_MEMORY_REGION slot {} at {:#x} "
                               "(+{:#x}{})",
                               number, gpa, host.size(), read_only ? ", read-only" : ""));
    }
    return number;
}

void KvmVm::remove_memory_slot(std::uint32_t number) const {
    kvm_userspace_memory_region slot{};
    slot.slot = number;
    // Size 0 deletes the slot; KVM has stopped using the host range once
    // the ioctl returns (it waits for every vCPU to leave the old map).
    if (::ioctl(fd(), KVM_SET_USER_MEMORY_REGION, &slot) != 0) {
        base::throw_errno("KVM_SET_USER_MEMORY_REGION deleting slot {}", number);
    }
    release_slot(number);
}

void KvmVm::create_irqchip_and_pit() {
    if (::ioctl(fd(), KVM_CREATE_IRQCHIP, 0) != 0) base::throw_errno("KVM_CREATE_IRQCHIP");
    initialize_legacy_pic();
    kvm_pit_config pit{};
    // No PC speaker port emulation: the PIT ignores port 0x61 writes' speaker bits.
    pit.flags = KVM_PIT_SPEAKER_DUMMY;
    if (::ioctl(fd(), KVM_CREATE_PIT2, &pit) != 0) base::throw_errno("KVM_CREATE_PIT2");
}

void KvmVm::initialize_legacy_pic() {
    // KVM resets its 8259s with vector base 0 and every line unmasked, so an
    // ISA interrupt would arrive as CPU exception vector 0-15 through LINT0's
    // ExtINT before the guest programs the PIC (a hardware-reduced ACPI Linux
    // never does). Leave them as a PC BIOS does: ICW done, vectors 0x08/0x70,
    // all lines masked but the cascade. A guest that wants the PIC reprograms it.
    struct PicSetup {
        std::uint32_t chip_id;
        std::uint8_t vector_base;
        std::uint8_t mask;
    };
    for (const PicSetup setup : {PicSetup{KVM_IRQCHIP_PIC_MASTER, 0x08, 0xfb},
                                 PicSetup{KVM_IRQCHIP_PIC_SLAVE, 0x70, 0xff}}) {
        kvm_irqchip chip{};
        chip.chip_id = setup.chip_id;
        if (::ioctl(fd(), KVM_GET_IRQCHIP, &chip) != 0) {
            base::throw_errno("KVM_GET_IRQCHIP for PIC {}", setup.chip_id);
        }
        chip.chip.pic.irq_base = setup.vector_base;
        chip.chip.pic.imr = setup.mask;
        if (::ioctl(fd(), KVM_SET_IRQCHIP, &chip) != 0) {
            base::throw_errno("KVM_SET_IRQCHIP for PIC {}", setup.chip_id);
        }
    }
}

void KvmVm::set_irq_line(std::uint32_t gsi, bool level) const {
    kvm_irq_level irq{};
    irq.irq = gsi;
    irq.level = level ? 1 : 0;
    if (::ioctl(fd(), KVM_IRQ_LINE, &irq) != 0) base::throw_errno("KVM_IRQ_LINE gsi {}", gsi);
}

void KvmVm::assign_irqfd(int eventfd, std::uint32_t gsi) const {
    kvm_irqfd irqfd{};
    irqfd.fd = static_cast<std::uint32_t>(eventfd);
    irqfd.gsi = gsi;
    if (::ioctl(fd(), KVM_IRQFD, &irqfd) != 0) base::throw_errno("KVM_IRQFD gsi {}", gsi);
}

void KvmVm::assign_resample_irqfd(int eventfd, int resample_fd, std::uint32_t gsi) const {
    kvm_irqfd irqfd{};
    irqfd.fd = static_cast<std::uint32_t>(eventfd);
    irqfd.gsi = gsi;
    irqfd.flags = KVM_IRQFD_FLAG_RESAMPLE;
    irqfd.resamplefd = static_cast<std::uint32_t>(resample_fd);
    if (::ioctl(fd(), KVM_IRQFD, &irqfd) != 0) {
        base::throw_errno("KVM_IRQFD with a resample fd, gsi {}", gsi);
    }
}

void KvmVm::deassign_irqfd(int eventfd, std::uint32_t gsi) const {
    kvm_irqfd irqfd{};
    irqfd.fd = static_cast<std::uint32_t>(eventfd);
    irqfd.gsi = gsi;
    irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
    if (::ioctl(fd(), KVM_IRQFD, &irqfd) != 0) {
        base::throw_errno("KVM_IRQFD deassign gsi {}", gsi);
    }
}

namespace {

kvm_ioeventfd make_ioeventfd(int eventfd, std::uint64_t address, std::uint32_t length, bool pio,
                             std::optional<std::uint64_t> datamatch) {
    kvm_ioeventfd request{};
    request.fd = eventfd;
    request.addr = address;
    request.len = length;
    if (pio) request.flags |= KVM_IOEVENTFD_FLAG_PIO;
    if (datamatch) {
        request.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
        request.datamatch = *datamatch;
    }
    return request;
}

}  // namespace

void KvmVm::assign_ioeventfd(int eventfd, std::uint64_t address, std::uint32_t length, bool pio,
                             std::optional<std::uint64_t> datamatch) const {
    auto request = make_ioeventfd(eventfd, address, length, pio, datamatch);
    if (::ioctl(fd(), KVM_IOEVENTFD, &request) != 0) {
        base::throw_errno("KVM_IOEVENTFD at {:#x}", address);
    }
}

void KvmVm::deassign_ioeventfd(int eventfd, std::uint64_t address, std::uint32_t length, bool pio,
                               std::optional<std::uint64_t> datamatch) const {
    auto request = make_ioeventfd(eventfd, address, length, pio, datamatch);
    request.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
    if (::ioctl(fd(), KVM_IOEVENTFD, &request) != 0) {
        base::throw_errno("KVM_IOEVENTFD deassign at {:#x}", address);
    }
}

void KvmVm::set_gsi_routing(const std::vector<kvm_irq_routing_entry>& entries) const {
    abi::FlexBuffer<abi::IrqRoutingHeader, kvm_irq_routing_entry> buffer(entries.size());
    buffer.header()->nr = static_cast<std::uint32_t>(entries.size());
    std::copy(entries.begin(), entries.end(), buffer.entries());
    if (::ioctl(fd(), abi::kSetGsiRouting, buffer.data()) != 0) {
        base::throw_errno("KVM_SET_GSI_ROUTING with {} entries", entries.size());
    }
}

}  // namespace vmm::kvm
