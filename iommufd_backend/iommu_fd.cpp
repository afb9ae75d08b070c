#include "iommufd_backend/iommu_fd.hpp"

#include <fcntl.h>

#include "iommufd_backend/ioctl.hpp"
#include "iommufd_backend/struct_revisions.hpp"

namespace iommufd_backend {

IommuFd IommuFd::open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        const int error = errno;
        if (error == ENOENT || error == ENXIO || error == ENODEV) {
            throw base::SystemError(
                error,
                fmt::format("cannot open {}: this kernel has no iommufd (needs CONFIG_IOMMUFD, "
                            "Linux 6.2 or newer; the lab kernel has it)",
                            path));
        }
        throw base::SystemError(error, fmt::format("cannot open {} (iommufd)", path));
    }
    return adopt(base::UniqueFd(fd));
}

IommuFd IommuFd::adopt(base::UniqueFd fd) {
    if (!fd.valid()) throw base::Error("IommuFd::adopt: not a file descriptor");
    return IommuFd(std::make_shared<base::UniqueFd>(std::move(fd)));
}

void IommuFd::destroy(std::uint32_t id, const char* kind) const {
    iommu_destroy cmd{};
    cmd.id = id;
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    // Safe: destroys by id within our own iommufd; the kernel refuses (EBUSY) objects still in use.
    checked_ioctl(fd(), IOMMU_DESTROY, cmd, "IOMMU_DESTROY", Feature::Iommufd, [&] {
        return std::vector<Param>{{kind, id}};
    });
}

int IommuFd::destroy_noexcept(std::uint32_t id) const noexcept {
    iommu_destroy cmd{};
    cmd.size = sizeof(cmd);
    cmd.id = id;
    return ioctl_errno(fd(), IOMMU_DESTROY, &cmd);
}

std::uint64_t IommuFd::get_option(std::uint32_t option, std::uint32_t object_id) const {
    iommu_option cmd{};
    cmd.option_id = option;
    cmd.op = IOMMU_OPTION_OP_GET;
    cmd.object_id = object_id;
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    // Safe: reads and writes `cmd` only.
    checked_ioctl(fd(), IOMMU_OPTION, cmd, "IOMMU_OPTION(get)", Feature::Iommufd, [&] {
        return std::vector<Param>{{"option", option}, {"object", object_id}};
    });
    return cmd.val64;
}

void IommuFd::set_option(std::uint32_t option, std::uint32_t object_id, std::uint64_t value) const {
    iommu_option cmd{};
    cmd.option_id = option;
    cmd.op = IOMMU_OPTION_OP_SET;
    cmd.object_id = object_id;
    cmd.val64 = value;
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    // Safe: reads and writes `cmd` only.
    checked_ioctl(fd(), IOMMU_OPTION, cmd, "IOMMU_OPTION(set)", Feature::Iommufd, [&] {
        return std::vector<Param>{{"option", option}, {"object", object_id}, {"value", value}};
    });
}

void IommuFd::set_rlimit_per_process(bool per_process) const {
    set_option(IOMMU_OPTION_RLIMIT_MODE, 0, per_process ? 1 : 0);
}

bool IommuFd::rlimit_per_process() const {
    return get_option(IOMMU_OPTION_RLIMIT_MODE, 0) != 0;
}

}  // namespace iommufd_backend
