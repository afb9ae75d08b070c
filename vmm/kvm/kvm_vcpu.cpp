#include "vmm/kvm/kvm_vcpu.hpp"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <memory>

#include "base/checked_math.hpp"
#include "base/error.hpp"
#include "vmm/kvm/flex_array_abi.hpp"

namespace vmm::kvm {

KvmVcpu KvmVcpu::create(const KvmSystem& system, const KvmVm& vm, std::uint32_t id) {
    base::UniqueFd fd(::ioctl(vm.fd(), KVM_CREATE_VCPU, static_cast<unsigned long>(id)));
    if (!fd) base::throw_errno("KVM_CREATE_VCPU {}", id);
    // The vCPU fd exposes kvm_run (and the PIO data page after it) for mmap;
    // shared because KVM writes exit information into it.
    auto mapping = base::MappedRegion::map(system.vcpu_mmap_size(), PROT_READ | PROT_WRITE,
                                           MAP_SHARED, fd.get(), 0);
    return KvmVcpu(id, std::move(fd), std::move(mapping));
}

std::span<std::uint8_t> KvmVcpu::io_data() const {
    const auto& io = run_state().io;
    const auto length = base::checked_mul(io.size, io.count);
    if (!length || !base::range_within(io.data_offset, *length, run_mapping_.size())) {
        throw base::Error("vCPU {}: KVM_EXIT_IO data at offset {:#x} (+{}) lies outside kvm_run",
                          id_, io.data_offset, length.value_or(0));
    }
    return run_mapping_.bytes().subspan(io.data_offset, *length);
}

bool KvmVcpu::run() {
    if (::ioctl(fd(), KVM_RUN, 0) == 0) return true;
    // EINTR: a signal kicked us out (stop request); EAGAIN can follow a
    // pending INIT on an AP. Both mean "check state and run again".
    if (errno == EINTR || errno == EAGAIN) return false;
    base::throw_errno("KVM_RUN on vCPU {}", id_);
}

kvm_regs KvmVcpu::regs() const {
    kvm_regs regs{};
    if (::ioctl(fd(), KVM_GET_REGS, &regs) != 0) base::throw_errno("KVM_GET_REGS on vCPU {}", id_);
    return regs;
}

void KvmVcpu::set_regs(const kvm_regs& regs) {
    if (::ioctl(fd(), KVM_SET_REGS, &regs) != 0) base::throw_errno("KVM_SET_REGS on vCPU {}", id_);
}

kvm_sregs KvmVcpu::sregs() const {
    kvm_sregs sregs{};
    if (::ioctl(fd(), KVM_GET_SREGS, &sregs) != 0) {
        base::throw_errno("KVM_GET_SREGS on vCPU {}", id_);
    }
    return sregs;
}

void KvmVcpu::set_sregs(const kvm_sregs& sregs) {
    if (::ioctl(fd(), KVM_SET_SREGS, &sregs) != 0) {
        base::throw_errno("KVM_SET_SREGS on vCPU {}", id_);
    }
}

void KvmVcpu::set_fpu(const kvm_fpu& fpu) {
    if (::ioctl(fd(), KVM_SET_FPU, &fpu) != 0) base::throw_errno("KVM_SET_FPU on vCPU {}", id_);
}

void KvmVcpu::set_cpuid(std::span<const kvm_cpuid_entry2> entries) {
    abi::FlexBuffer<abi::Cpuid2Header, kvm_cpuid_entry2> buffer(entries.size());
    buffer.header()->nent = static_cast<std::uint32_t>(entries.size());
    std::copy(entries.begin(), entries.end(), buffer.entries());
    if (::ioctl(fd(), abi::kSetCpuid2, buffer.data()) != 0) {
        base::throw_errno("KVM_SET_CPUID2 with {} entries on vCPU {}", entries.size(), id_);
    }
}

void KvmVcpu::set_msrs(std::span<const std::pair<std::uint32_t, std::uint64_t>> msrs) {
    abi::FlexBuffer<abi::MsrsHeader, kvm_msr_entry> buffer(msrs.size());
    buffer.header()->nmsrs = static_cast<std::uint32_t>(msrs.size());
    for (std::size_t i = 0; i < msrs.size(); ++i) {
        buffer.entries()[i].index = msrs[i].first;
        buffer.entries()[i].data = msrs[i].second;
    }
    // KVM_SET_MSRS returns how many it set; it stops at the first it rejects.
    const int set = ::ioctl(fd(), abi::kSetMsrs, buffer.data());
    if (set < 0) base::throw_errno("KVM_SET_MSRS on vCPU {}", id_);
    if (static_cast<std::size_t>(set) != msrs.size()) {
        throw base::Error("KVM_SET_MSRS on vCPU {} rejected MSR {:#x}", id_,
                          msrs[static_cast<std::size_t>(set)].first);
    }
}

kvm_lapic_state KvmVcpu::lapic() const {
    kvm_lapic_state lapic{};
    if (::ioctl(fd(), KVM_GET_LAPIC, &lapic) != 0) base::throw_errno("KVM_GET_LAPIC on vCPU {}", id_);
    return lapic;
}

void KvmVcpu::set_lapic(const kvm_lapic_state& lapic) {
    if (::ioctl(fd(), KVM_SET_LAPIC, &lapic) != 0) base::throw_errno("KVM_SET_LAPIC on vCPU {}", id_);
}

}  // namespace vmm::kvm
