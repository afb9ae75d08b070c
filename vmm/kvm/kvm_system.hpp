// /dev/kvm: the system-level handle. Checks the API version and every
// capability the VMM relies on, each with its own error message.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "base/unique_fd.hpp"

namespace vmm::kvm {

// A capability the VMM relies on, and what for (both go into the error).
struct RequiredCapability {
    long capability;
    const char* name;
    const char* used_for;
};

// Every capability whose ioctls the VMM (vmm_core and devices/) calls;
// KvmSystem::open refuses a KVM that lacks one.
std::span<const RequiredCapability> required_capabilities();

// The checks KvmSystem::open makes on KVM's answers, apart so that tests can
// feed them answers no real KVM gives. Each throws base::Error on one line.
// `version` is KVM_GET_API_VERSION's result; when negative, `error_number` is
// its errno (a device that is not KVM fails the ioctl).
void check_api_version(const std::string& path, int version, int error_number);
// `check_extension` answers KVM_CHECK_EXTENSION (<= 0: absent).
void check_capabilities(const std::function<int(long)>& check_extension);

class KvmSystem {
  public:
    // Opens `path` (normally /dev/kvm) and verifies API version 12 and the
    // required capabilities. Throws base::Error naming what is missing, or
    // that `path` is not a KVM device at all.
    static KvmSystem open(const std::string& path = "/dev/kvm");

    int fd() const { return fd_.get(); }
    // KVM_CHECK_EXTENSION's answer (0 = absent; some capabilities return a count).
    int check_extension(long capability) const;
    std::size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }
    int max_vcpus() const { return max_vcpus_; }
    // KVM_GET_SUPPORTED_CPUID, cached.
    const std::vector<kvm_cpuid_entry2>& supported_cpuid() const { return supported_cpuid_; }

  private:
    explicit KvmSystem(base::UniqueFd fd) : fd_(std::move(fd)) {}

    base::UniqueFd fd_;
    std::size_t vcpu_mmap_size_ = 0;
    int max_vcpus_ = 0;
    std::vector<kvm_cpuid_entry2> supported_cpuid_;
};

// True when the host CPU exposes hardware virtualization (vmx/svm). KVM
// without it (PVM) emulates a non-PVM guest instruction by instruction.
bool host_has_hardware_virtualization();

}  // namespace vmm::kvm
