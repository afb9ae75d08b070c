// The part of the vhost uAPI that every in-kernel backend shares
// (vhost-vsock now, vhost-net later): one /dev/vhost-* fd owned by this
// process, the guest memory table, and per queue its ring and eventfds.
// The kernel walks the rings through this process's mapping of guest RAM,
// so every address it gets is a host virtual address inside GuestMemory's
// mapping, and it checks each guest address against the table itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/unique_fd.hpp"
#include "devices/virtio/vhost/vhost_uapi.hpp"
#include "devices/virtio/virtio_device.hpp"
#include "vmm/guest_memory.hpp"

namespace devices::virtio::vhost {

// One vhost_memory_region per region of guest RAM.
std::vector<vhost_memory_region> memory_regions(const vmm::GuestMemory& memory);

// The host addresses of queue `index`'s rings (for VHOST_SET_VRING_ADDR).
// Throws base::Error when a ring is not entirely guest RAM.
vhost_vring_addr ring_addresses(std::uint32_t index, const vmm::GuestMemory& memory,
                                const QueueConfig& config);

class VhostKernel {
  public:
    // Opens `path` and becomes its owner (VHOST_SET_OWNER: the kernel
    // worker then runs in this process and reads its memory). Throws
    // base::SystemError, errno kept, naming the path.
    explicit VhostKernel(std::string path);

    int fd() const { return fd_.get(); }
    const std::string& path() const { return path_; }

    std::uint64_t features() const;
    void set_features(std::uint64_t features);
    void set_mem_table(const vmm::GuestMemory& memory);
    // Hands one queue to the kernel: its size, rings, next available index
    // 0 (a fresh ring after the driver's reset), kick and call eventfds, and
    // `error_fd` (the kernel signals it when the driver broke the ring; -1:
    // none). Only while the backend is stopped.
    void set_vring(std::uint32_t index, const vmm::GuestMemory& memory, const OffloadedQueue& queue,
                   int error_fd);

    // An ioctl that takes a pointer to `argument`; throws base::SystemError
    // naming `what` and the path.
    template <typename T>
    void call(unsigned long request, const T& argument, const char* what) const {
        call_raw(request, &argument, what);
    }

  private:
    void call_raw(unsigned long request, const void* argument, const char* what) const;

    std::string path_;
    base::UniqueFd fd_;
};

}  // namespace devices::virtio::vhost
