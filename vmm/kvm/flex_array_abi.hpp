// Headers of the KVM ioctl structs that end in a flexible array, spelled so
// that C++ sees the kernel's layout.
//
// Why: linux-libc-dev declares those arrays with __DECLARE_FLEX_ARRAY, an
// anonymous struct holding an empty struct. An empty struct is 0 bytes in C
// but 1 byte in C++, so in C++ `sizeof(kvm_cpuid2)` is 12, not 8: the array
// moves and the ioctl numbers (which encode the size) change, and KVM
// answers EINVAL. Seen with Debian 12's 6.1 headers.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vmm::kvm::abi {

struct Cpuid2Header {  // struct kvm_cpuid2 without entries[]
    std::uint32_t nent;
    std::uint32_t padding;
};
struct MsrsHeader {  // struct kvm_msrs without entries[]
    std::uint32_t nmsrs;
    std::uint32_t pad;
};
struct IrqRoutingHeader {  // struct kvm_irq_routing without entries[]
    std::uint32_t nr;
    std::uint32_t flags;
};

static_assert(sizeof(Cpuid2Header) == 8 && alignof(kvm_cpuid_entry2) <= 8);
static_assert(sizeof(MsrsHeader) == 8 && alignof(kvm_msr_entry) <= 8);
static_assert(sizeof(IrqRoutingHeader) == 8 && alignof(kvm_irq_routing_entry) <= 8);

inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Cpuid2Header);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Cpuid2Header);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
inline constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, IrqRoutingHeader);

// A zeroed, 8-byte aligned buffer holding Header followed by `count` Entry
// items, as those ioctls expect.
template <typename Header, typename Entry>
class FlexBuffer {
  public:
    explicit FlexBuffer(std::size_t count)
        : storage_((sizeof(Header) + count * sizeof(Entry) + 7) / 8, 0) {}

    // The storage is 8-byte aligned, zeroed and at least sizeof(Header) long;
    // Header and Entry are trivially copyable C structs.
    Header* header() { return reinterpret_cast<Header*>(storage_.data()); }
    Entry* entries() {
        return reinterpret_cast<Entry*>(reinterpret_cast<std::uint8_t*>(storage_.data()) +
                                        sizeof(Header));
    }
    void* data() { return storage_.data(); }

  private:
    std::vector<std::uint64_t> storage_;
};

}  // namespace vmm::kvm::abi
