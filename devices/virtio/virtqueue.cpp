#include "devices/virtio/virtqueue.hpp"

#include <atomic>
#include <cstring>

#include "base/checked_math.hpp"

namespace devices::virtio {

namespace {

// Ring layout offsets (2.7.6 and 2.7.8).
constexpr std::size_t kRingFlags = 0;
constexpr std::size_t kRingIdx = 2;
constexpr std::size_t kRingEntries = 4;

// The ring fields are shared with the driver running on other CPUs, so
// the index fields are accessed atomically with acquire/release ordering.
// Safety of both casts: the rings were checked to be aligned (desc 16,
// avail 2, used 4), offsets are even and inside the validated ring spans.
std::uint16_t load_u16(std::span<const std::uint8_t> ring, std::size_t offset) {
    const auto* field = reinterpret_cast<const std::uint16_t*>(ring.data() + offset);
    return __atomic_load_n(field, __ATOMIC_ACQUIRE);
}

void store_u16(std::span<std::uint8_t> ring, std::size_t offset, std::uint16_t value) {
    auto* field = reinterpret_cast<std::uint16_t*>(ring.data() + offset);
    __atomic_store_n(field, value, __ATOMIC_RELEASE);
}

std::span<std::uint8_t> ring_span(const vmm::GuestMemory& memory, std::uint64_t address,
                                  std::uint64_t length, std::uint64_t alignment, const char* what) {
    if (address % alignment != 0) {
        throw VirtqueueError("virtqueue {} at {:#x} is not {}-byte aligned", what, address,
                             alignment);
    }
    auto bytes = memory.try_span(address, length);
    if (!bytes) {
        throw VirtqueueError("virtqueue {} [{:#x}, +{:#x}) is not guest RAM", what, address,
                             length);
    }
    return *bytes;
}

}  // namespace

Virtqueue::Virtqueue(const vmm::GuestMemory& memory, const QueueConfig& config, bool event_idx,
                     bool indirect)
    : memory_(memory), size_(config.size), event_idx_(event_idx), indirect_(indirect) {
    if (size_ == 0 || size_ > kMaxQueueSize || (size_ & (size_ - 1)) != 0) {
        throw VirtqueueError("virtqueue size {} is not a power of two up to {}", size_,
                             kMaxQueueSize);
    }
    desc_ = ring_span(memory, config.desc_table, 16ull * size_, 16, "descriptor table");
    // flags, idx, ring[size], used_event
    avail_ = ring_span(memory, config.avail_ring, 6ull + 2ull * size_, 2, "available ring");
    // flags, idx, ring[size] of {id, len}, avail_event
    used_ = ring_span(memory, config.used_ring, 6ull + 8ull * size_, 4, "used ring");
    // After a reset both sides start at index 0 (2.7.13 / 2.7.14).
}

std::uint16_t Virtqueue::read_avail_idx() const {
    return load_u16(avail_, kRingIdx);
}

bool Virtqueue::has_available() const {
    return read_avail_idx() != next_avail_;
}

Descriptor Virtqueue::read_descriptor(std::span<const std::uint8_t> table,
                                      std::uint32_t index) const {
    Descriptor descriptor;
    // index < table entries is checked by every caller.
    std::memcpy(&descriptor, table.data() + std::size_t{index} * sizeof(Descriptor),
                sizeof(descriptor));
    return descriptor;
}

void Virtqueue::add_buffer(DescriptorChain& chain, const Descriptor& descriptor,
                           bool& seen_writable) const {
    const bool writable = (descriptor.flags & kDescWrite) != 0;
    if (!writable && seen_writable) {
        throw VirtqueueError(
            "virtqueue chain {} has a device-readable buffer after a "
            "device-writable one",
            chain.head);
    }
    seen_writable = seen_writable || writable;
    auto bytes = memory_.try_span(descriptor.address, descriptor.length);
    if (!bytes) {
        throw VirtqueueError("virtqueue chain {} buffer [{:#x}, +{:#x}) is not guest RAM",
                             chain.head, descriptor.address, descriptor.length);
    }
    auto& total = writable ? chain.writable_bytes : chain.readable_bytes;
    const auto sum = base::checked_add(total, descriptor.length);
    if (!sum || *sum + (writable ? chain.readable_bytes : chain.writable_bytes) > kMaxChainBytes) {
        throw VirtqueueError("virtqueue chain {} describes more than 4 GiB", chain.head);
    }
    total = *sum;
    (writable ? chain.writable : chain.readable).push_back(Buffer{descriptor.address, *bytes});
}

void Virtqueue::walk_indirect(DescriptorChain& chain, const Descriptor& descriptor,
                              bool& seen_writable) const {
    if (!indirect_) {
        throw VirtqueueError(
            "virtqueue chain {} uses an indirect table without "
            "VIRTIO_F_INDIRECT_DESC",
            chain.head);
    }
    if ((descriptor.flags & kDescNext) != 0) {
        throw VirtqueueError("virtqueue chain {} sets both INDIRECT and NEXT", chain.head);
    }
    const std::uint32_t count = descriptor.length / sizeof(Descriptor);
    if (descriptor.length == 0 || descriptor.length % sizeof(Descriptor) != 0 ||
        count > kMaxIndirectDescriptors) {
        throw VirtqueueError("virtqueue chain {} has an indirect table of {} bytes", chain.head,
                             descriptor.length);
    }
    auto table = memory_.try_span(descriptor.address, descriptor.length);
    if (!table) {
        throw VirtqueueError("virtqueue chain {} indirect table [{:#x}, +{:#x}) is not guest RAM",
                             chain.head, descriptor.address, descriptor.length);
    }
    std::uint32_t index = 0;
    for (std::uint32_t visited = 0;; ++visited) {
        if (visited == count) {
            throw VirtqueueError("virtqueue chain {}: indirect table loops", chain.head);
        }
        const Descriptor entry = read_descriptor(*table, index);
        if ((entry.flags & kDescIndirect) != 0) {
            throw VirtqueueError("virtqueue chain {}: nested indirect table", chain.head);
        }
        add_buffer(chain, entry, seen_writable);
        if ((entry.flags & kDescNext) == 0) return;
        index = entry.next;
        if (index >= count) {
            throw VirtqueueError("virtqueue chain {}: indirect next {} is outside the table of {}",
                                 chain.head, index, count);
        }
    }
}

std::optional<DescriptorChain> Virtqueue::pop() {
    const std::uint16_t avail_idx = read_avail_idx();
    const std::uint16_t pending = static_cast<std::uint16_t>(avail_idx - next_avail_);
    if (pending == 0) return std::nullopt;
    if (pending > size_) {
        throw VirtqueueError(
            "virtqueue available index {} is {} ahead of {}, more than the "
            "queue size {}",
            avail_idx, pending, next_avail_, size_);
    }
    const std::uint16_t head = load_u16(avail_, kRingEntries + 2u * (next_avail_ % size_));
    ++next_avail_;
    if (head >= size_) {
        throw VirtqueueError("virtqueue head {} is outside the queue of {}", head, size_);
    }

    DescriptorChain chain;
    chain.head = head;
    bool seen_writable = false;
    std::uint32_t index = head;
    for (std::uint32_t visited = 0;; ++visited) {
        if (visited == size_) throw VirtqueueError("virtqueue chain {} loops", head);
        const Descriptor descriptor = read_descriptor(desc_, index);
        if ((descriptor.flags & kDescIndirect) != 0) {
            walk_indirect(chain, descriptor, seen_writable);
            break;
        }
        add_buffer(chain, descriptor, seen_writable);
        if ((descriptor.flags & kDescNext) == 0) break;
        index = descriptor.next;
        if (index >= size_) {
            throw VirtqueueError("virtqueue chain {}: next {} is outside the queue of {}", head,
                                 index, size_);
        }
    }
    return chain;
}

void Virtqueue::push_used(std::uint16_t head, std::uint32_t written) {
    const UsedElement element{head, written};
    const std::size_t slot = kRingEntries + sizeof(UsedElement) * (next_used_ % size_);
    std::memcpy(used_.data() + slot, &element, sizeof(element));
    ++next_used_;
    // Release: the element is visible before the index that publishes it.
    store_u16(used_, kRingIdx, next_used_);
}

void Virtqueue::push_used(std::span<const UsedElement> elements) {
    std::uint16_t index = next_used_;
    for (const UsedElement& element : elements) {
        const std::size_t slot = kRingEntries + sizeof(UsedElement) * (index % size_);
        std::memcpy(used_.data() + slot, &element, sizeof(element));
        ++index;
    }
    next_used_ = index;
    store_u16(used_, kRingIdx, next_used_);
}

bool Virtqueue::needs_interrupt() {
    // The used index store must be visible before the driver's suppression
    // fields are read, or an interrupt the driver waits for can be lost.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const std::uint16_t old = signalled_used_;
    signalled_used_ = next_used_;
    if (!event_idx_) {
        const bool wanted = (load_u16(avail_, kRingFlags) & kAvailNoInterrupt) == 0;
        return wanted && old != next_used_;
    }
    const std::uint16_t used_event = load_u16(avail_, kRingEntries + 2u * size_);
    // vring_need_event(): did next_used_ pass used_event since the last check?
    return static_cast<std::uint16_t>(next_used_ - used_event - 1) <
           static_cast<std::uint16_t>(next_used_ - old);
}

bool Virtqueue::enable_notification() {
    if (event_idx_) {
        store_u16(used_, kRingEntries + sizeof(UsedElement) * size_, next_avail_);
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    return has_available();
}

}  // namespace devices::virtio
