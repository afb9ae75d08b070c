#include "vmm/kvm/kvm_system.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <array>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "base/error.hpp"
#include "vmm/kvm/flex_array_abi.hpp"

namespace vmm::kvm {

namespace {

// Only capabilities of ioctls that are actually made: an unused one would
// refuse hosts for nothing, a missing one would fail mid-boot instead of up
// front. MSIs go through GSI routing + irqfd, never KVM_SIGNAL_MSI, and APs
// start through the in-kernel LAPIC (INIT/SIPI), never KVM_SET_MP_STATE.
constexpr std::array kRequiredCapabilities = {
    RequiredCapability{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM"},
    RequiredCapability{KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "the in-kernel PIC, IOAPIC and LAPICs"},
    RequiredCapability{KVM_CAP_PIT2, "KVM_CAP_PIT2", "the in-kernel PIT"},
    RequiredCapability{KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "the real-mode TSS"},
    RequiredCapability{KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR",
                       "the identity-map page"},
    RequiredCapability{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "CPUID set-up"},
    RequiredCapability{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT",
                       "stopping vCPUs without races"},
    RequiredCapability{KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "device interrupts"},
    RequiredCapability{KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "device notifications"},
    RequiredCapability{KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING", "MSI routing"},
};

}  // namespace

std::span<const RequiredCapability> required_capabilities() {
    return kRequiredCapabilities;
}

void check_api_version(const std::string& path, int version, int error_number) {
    if (version < 0) {
        throw base::Error("{} is not a KVM device (KVM_GET_API_VERSION: {})", path,
                          std::strerror(error_number));
    }
    if (version != KVM_API_VERSION) {
        throw base::Error("{} reports KVM API version {}, this VMM needs {}", path, version,
                          KVM_API_VERSION);
    }
}

void check_capabilities(const std::function<int(long)>& check_extension) {
    for (const auto& required : kRequiredCapabilities) {
        if (check_extension(required.capability) <= 0) {
            throw base::Error("KVM lacks {}, needed for {}", required.name, required.used_for);
        }
    }
}

KvmSystem KvmSystem::open(const std::string& path) {
    base::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) {
        const int saved = errno;
        if (saved == ENOENT) {
            throw base::Error(
                "{} does not exist: this host offers no KVM (load kvm_intel or "
                "kvm_amd, or run inside the lab, see docs/LAB.md)",
                path);
        }
        if (saved == EACCES) {
            throw base::Error(
                "no permission to open {} read-write (join its group, usually "
                "kvm, or run as root)",
                path);
        }
        throw base::SystemError(saved, fmt::format("opening {}", path));
    }
    KvmSystem system(std::move(fd));

    // KVM_GET_API_VERSION takes no argument; 12 is the only stable version.
    const int version = ::ioctl(system.fd(), KVM_GET_API_VERSION, 0);
    check_api_version(path, version, errno);
    check_capabilities([&system](long capability) { return system.check_extension(capability); });

    const int mmap_size = ::ioctl(system.fd(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (mmap_size <= 0) base::throw_errno("KVM_GET_VCPU_MMAP_SIZE");
    system.vcpu_mmap_size_ = static_cast<std::size_t>(mmap_size);
    system.max_vcpus_ = system.check_extension(KVM_CAP_MAX_VCPUS);
    if (system.max_vcpus_ <= 0) system.max_vcpus_ = system.check_extension(KVM_CAP_NR_VCPUS);

    // KVM_GET_SUPPORTED_CPUID fails with E2BIG until the buffer is big enough.
    for (std::uint32_t capacity = 64; capacity <= 4096; capacity *= 2) {
        abi::FlexBuffer<abi::Cpuid2Header, kvm_cpuid_entry2> buffer(capacity);
        buffer.header()->nent = capacity;
        if (::ioctl(system.fd(), abi::kGetSupportedCpuid, buffer.data()) == 0) {
            system.supported_cpuid_.assign(buffer.entries(),
                                           buffer.entries() + buffer.header()->nent);
            break;
        }
        if (errno != E2BIG) {
            base::throw_errno("KVM_GET_SUPPORTED_CPUID with room for {} entries", capacity);
        }
    }
    if (system.supported_cpuid_.empty())
        throw base::Error("KVM_GET_SUPPORTED_CPUID returned no entries");
    return system;
}

int KvmSystem::check_extension(long capability) const {
    // KVM_CHECK_EXTENSION only reads its integer argument.
    const int result = ::ioctl(fd(), KVM_CHECK_EXTENSION, capability);
    return result < 0 ? 0 : result;
}

bool host_has_hardware_virtualization() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
        if (line.rfind("flags", 0) != 0) continue;
        std::istringstream words(line);
        std::string word;
        while (words >> word) {
            if (word == "vmx" || word == "svm") return true;
        }
        return false;
    }
    return false;
}

}  // namespace vmm::kvm
