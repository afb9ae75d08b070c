#include "devices/virtio/vhost/vhost_kernel.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cstring>

#include "base/error.hpp"

namespace devices::virtio::vhost {

namespace {

static_assert(sizeof(vhost_memory) == 8 && sizeof(vhost_memory_region) == 32,
              "VHOST_SET_MEM_TABLE's layout is part of the uAPI");

// Bytes of each split ring (2.7), counting the event-index fields whether or
// not EVENT_IDX is negotiated: the kernel may touch them once it is.
std::uint64_t desc_bytes(std::uint16_t size) {
    return 16ull * size;
}
std::uint64_t avail_bytes(std::uint16_t size) {
    return 6 + 2ull * size;
}
std::uint64_t used_bytes(std::uint16_t size) {
    return 6 + 8ull * size;
}

std::uint64_t host_address(const vmm::GuestMemory& memory, std::uint64_t guest_address,
                           std::uint64_t bytes, const char* ring, std::uint32_t index) {
    const auto span = memory.try_span(guest_address, bytes);
    if (!span) {
        throw base::Error("vhost queue {}: the {} ring at {:#x} ({} bytes) is not guest RAM", index,
                          ring, guest_address, bytes);
    }
    return reinterpret_cast<std::uintptr_t>(span->data());
}

}  // namespace

std::vector<vhost_memory_region> memory_regions(const vmm::GuestMemory& memory) {
    std::vector<vhost_memory_region> regions;
    for (const auto& region : memory.regions()) {
        regions.push_back(vhost_memory_region{
            .guest_phys_addr = region.guest_address,
            .memory_size = region.size,
            .userspace_addr = reinterpret_cast<std::uintptr_t>(region.host_address),
            .flags_padding = 0});
    }
    return regions;
}

vhost_vring_addr ring_addresses(std::uint32_t index, const vmm::GuestMemory& memory,
                                const QueueConfig& config) {
    vhost_vring_addr address{};
    address.index = index;
    address.desc_user_addr =
        host_address(memory, config.desc_table, desc_bytes(config.size), "descriptor", index);
    address.avail_user_addr =
        host_address(memory, config.avail_ring, avail_bytes(config.size), "available", index);
    address.used_user_addr =
        host_address(memory, config.used_ring, used_bytes(config.size), "used", index);
    return address;
}

VhostKernel::VhostKernel(std::string path) : path_(std::move(path)) {
    fd_ = base::UniqueFd(::open(path_.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd_) base::throw_errno("{}", path_);
    // VHOST_SET_OWNER takes no argument.
    if (::ioctl(fd_.get(), VHOST_SET_OWNER) != 0) base::throw_errno("{}: VHOST_SET_OWNER", path_);
}

void VhostKernel::call_raw(unsigned long request, const void* argument, const char* what) const {
    // Every vhost ioctl reads (or, for the GET ones, writes) exactly the
    // struct its request number encodes; callers pass that type.
    if (::ioctl(fd_.get(), request, argument) != 0) base::throw_errno("{}: {}", path_, what);
}

std::uint64_t VhostKernel::features() const {
    std::uint64_t features = 0;
    if (::ioctl(fd_.get(), VHOST_GET_FEATURES, &features) != 0) {
        base::throw_errno("{}: VHOST_GET_FEATURES", path_);
    }
    return features;
}

void VhostKernel::set_features(std::uint64_t features) {
    call(VHOST_SET_FEATURES, features, "VHOST_SET_FEATURES");
}

void VhostKernel::set_mem_table(const vmm::GuestMemory& memory) {
    const auto regions = memory_regions(memory);
    // struct vhost_memory ends in a flexible array: build header and
    // regions in 8-byte-aligned storage, as the kernel copies it.
    std::vector<std::uint64_t> storage(
        (sizeof(vhost_memory) + regions.size() * sizeof(vhost_memory_region)) / 8);
    vhost_memory header{};
    header.nregions = static_cast<std::uint32_t>(regions.size());
    std::memcpy(storage.data(), &header, sizeof(header));
    std::memcpy(reinterpret_cast<std::uint8_t*>(storage.data()) + sizeof(header), regions.data(),
                regions.size() * sizeof(vhost_memory_region));
    call_raw(VHOST_SET_MEM_TABLE, storage.data(), "VHOST_SET_MEM_TABLE");
}

void VhostKernel::set_vring(std::uint32_t index, const vmm::GuestMemory& memory,
                            const OffloadedQueue& queue, int error_fd) {
    call(VHOST_SET_VRING_NUM, vhost_vring_state{index, queue.config.size}, "VHOST_SET_VRING_NUM");
    call(VHOST_SET_VRING_BASE, vhost_vring_state{index, 0}, "VHOST_SET_VRING_BASE");
    call(VHOST_SET_VRING_ADDR, ring_addresses(index, memory, queue.config), "VHOST_SET_VRING_ADDR");
    call(VHOST_SET_VRING_KICK, vhost_vring_file{index, queue.kick_fd}, "VHOST_SET_VRING_KICK");
    call(VHOST_SET_VRING_CALL, vhost_vring_file{index, queue.call_fd}, "VHOST_SET_VRING_CALL");
    call(VHOST_SET_VRING_ERR, vhost_vring_file{index, error_fd}, "VHOST_SET_VRING_ERR");
}

}  // namespace devices::virtio::vhost
