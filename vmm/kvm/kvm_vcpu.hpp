// A KVM vCPU fd and its shared kvm_run page.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "base/mapped_region.hpp"
#include "base/unique_fd.hpp"
#include "vmm/kvm/kvm_system.hpp"
#include "vmm/kvm/kvm_vm.hpp"

namespace vmm::kvm {

class KvmVcpu {
public:
    static KvmVcpu create(const KvmSystem& system, const KvmVm& vm, std::uint32_t id);

    std::uint32_t id() const { return id_; }
    int fd() const { return fd_.get(); }
    // The kvm_run page that KVM fills on each exit. Lives as long as this object.
    kvm_run& run_state() const {
        // The mapping is at least sizeof(kvm_run) (KVM_GET_VCPU_MMAP_SIZE) and page aligned.
        return *reinterpret_cast<kvm_run*>(run_mapping_.data());
    }
    // Pointer to I/O data of a KVM_EXIT_IO, inside the kvm_run mapping (bounds-checked).
    std::span<std::uint8_t> io_data() const;

    // KVM_RUN. Returns false when interrupted by a signal (EINTR) or an
    // immediate_exit request; true after a real exit.
    bool run();

    kvm_regs regs() const;
    void set_regs(const kvm_regs& regs);
    kvm_sregs sregs() const;
    void set_sregs(const kvm_sregs& sregs);
    void set_fpu(const kvm_fpu& fpu);
    void set_cpuid(std::span<const kvm_cpuid_entry2> entries);
    void set_msrs(std::span<const std::pair<std::uint32_t, std::uint64_t>> msrs);
    kvm_lapic_state lapic() const;
    void set_lapic(const kvm_lapic_state& lapic);

private:
    KvmVcpu(std::uint32_t id, base::UniqueFd fd, base::MappedRegion run_mapping)
        : id_(id), fd_(std::move(fd)), run_mapping_(std::move(run_mapping)) {}

    std::uint32_t id_;
    base::UniqueFd fd_;
    base::MappedRegion run_mapping_;
};

}  // namespace vmm::kvm
