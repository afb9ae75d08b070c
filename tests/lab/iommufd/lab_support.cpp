#include "lab_support.hpp"

#include <dirent.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>

#include "iommufd_backend/ioctl.hpp"
#include "iommufd_backend/kernel_version.hpp"
#include "iommufd_backend/uapi/iommufd_uapi.h"

namespace iommufd_lab {

int open_fd_count() {
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir("/proc/self/fd"), ::closedir);
    if (!dir) return -1;
    int count = 0;
    while (const dirent* entry = ::readdir(dir.get())) {
        if (entry->d_name[0] != '.') ++count;
    }
    return count - 1;  // the directory stream's own fd
}

bool required(const std::string& feature) {
    const char* value = std::getenv("IOMMUFD_LAB_REQUIRE");
    if (value == nullptr) return false;
    std::stringstream list(value);
    std::string item;
    while (std::getline(list, item, ',')) {
        if (item == feature) return true;
    }
    return false;
}

std::optional<std::string> selftest_driver_unavailable() {
    try {
        const auto iommufd = iommufd_backend::IommuFd::open();
        // An op the driver rejects cheaply: MD_CHECK_REFS of nothing. ENOTTY
        // means no selftest driver; anything else means it answered.
        iommu_test_cmd cmd{};
        cmd.size = sizeof(cmd);
        cmd.op = IOMMU_TEST_OP_MD_CHECK_REFS;
        if (iommufd_backend::ioctl_errno(iommufd.fd(), IOMMU_TEST_CMD, &cmd) == ENOTTY) {
            return "the kernel has no iommufd selftest driver (CONFIG_IOMMUFD_TEST)";
        }
        return std::nullopt;
    } catch (const std::exception& error) {
        return std::string(error.what());
    }
}

std::optional<std::string> vfio_pci_device() {
    if (const char* bdf = std::getenv("IOMMUFD_LAB_VFIO_BDF"); bdf != nullptr && *bdf != '\0')
        return bdf;
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir("/sys/bus/pci/drivers/vfio-pci"), ::closedir);
    if (!dir) return std::nullopt;
    while (const dirent* entry = ::readdir(dir.get())) {
        // Device links look like 0000:00:03.0.
        if (std::strlen(entry->d_name) == 12 && entry->d_name[4] == ':')
            return std::string(entry->d_name);
    }
    return std::nullopt;
}

base::UniqueFd never_open_fd() {
    return base::UniqueFd(INT_MAX);
}

::testing::AssertionResult running_lab_kernel_612() {
    const auto running = iommufd_backend::KernelVersion::running();
    if (running && running->major == 6 && running->minor == 12)
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "the lab kernel is " << (running ? running->to_string() : "unknown")
           << ", not 6.12.y: these tests assert 6.12's exact answers; update them for it";
}

base::MappedRegion anonymous_pages(std::size_t pages) {
    const std::size_t size = pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    auto region =
        base::MappedRegion::map(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    std::memset(region.data(), 0x5a, size);
    return region;
}

Memfd make_memfd(std::uint64_t size, const char* name) {
    base::UniqueFd fd(::memfd_create(name, MFD_CLOEXEC));
    if (!fd.valid()) base::throw_errno("memfd_create({})", name);
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
        base::throw_errno("ftruncate memfd to {:#x}", size);
    auto mapping = base::MappedRegion::map(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get());
    return {std::move(fd), std::move(mapping)};
}

}  // namespace iommufd_lab
