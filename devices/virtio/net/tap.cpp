#include "devices/virtio/net/tap.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include <cstring>

#include "base/error.hpp"
#include "devices/virtio/net/net_spec.hpp"

namespace devices::virtio {

namespace {

constexpr const char* kTunPath = "/dev/net/tun";

[[noreturn]] void throw_attach_error(const std::string& name, int error) {
    switch (error) {
        case EBUSY:
            throw base::Error("tap {} is in use by another process", name);
        case EPERM:
        case EACCES:
            throw base::Error(
                "tap {}: permission denied (attaching needs CAP_NET_ADMIN or the tap's owner)",
                name);
        case EINVAL:
            throw base::Error(
                "{} is not a single-queue tap interface (a tun, multi_queue or non-tun device "
                "of that name exists)",
                name);
        default:
            throw base::SystemError(error, fmt::format("tap {}: TUNSETIFF", name));
    }
}

}  // namespace

Tap Tap::open(const std::string& name) {
    if (name.empty() || name.size() >= IFNAMSIZ) {
        throw base::Error("tap name '{}' must be 1 to {} characters", name, IFNAMSIZ - 1);
    }
    base::UniqueFd fd(::open(kTunPath, O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd) {
        const int error = errno;
        throw base::SystemError(error, fmt::format("tap {}: cannot open {}", name, kTunPath));
    }
    ifreq request{};
    std::memcpy(request.ifr_name, name.data(), name.size());
    request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    // TUNSETIFF reads and writes one struct ifreq (the kernel may fill in
    // the final name, e.g. for "tap%d").
    if (::ioctl(fd.get(), TUNSETIFF, &request) != 0) throw_attach_error(name, errno);
    // The header with num_buffers: VERSION_1 always uses it, whether or not
    // merged receive buffers were negotiated.
    int header_bytes = static_cast<int>(kNetHeaderBytes);
    if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &header_bytes) != 0) {
        base::throw_errno("tap {}: TUNSETVNETHDRSZ {}", name, header_bytes);
    }
    // No offloads until a guest accepts them (see set_offload).
    if (::ioctl(fd.get(), TUNSETOFFLOAD, 0ul) != 0)
        base::throw_errno("tap {}: TUNSETOFFLOAD", name);
    return Tap(std::move(fd), std::string(request.ifr_name, ::strnlen(request.ifr_name, IFNAMSIZ)));
}

Tap Tap::adopt(base::UniqueFd fd, std::string name) {
    if (!fd) throw base::Error("tap {}: no file descriptor", name);
    if (::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK) != 0) {
        base::throw_errno("tap {}: O_NONBLOCK", name);
    }
    return Tap(std::move(fd), std::move(name));
}

void Tap::set_offload(unsigned flags) {
    if (flags == offload_) return;
    // TUNSETOFFLOAD takes the flags by value.
    if (::ioctl(fd_.get(), TUNSETOFFLOAD, static_cast<unsigned long>(flags)) != 0) {
        base::throw_errno("tap {}: TUNSETOFFLOAD {:#x}", name_, flags);
    }
    offload_ = flags;
}

}  // namespace devices::virtio
