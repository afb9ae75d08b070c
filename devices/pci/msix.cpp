#include "devices/pci/msix.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

#include "base/error.hpp"
#include "base/event_fd.hpp"
#include "vmm/log.hpp"

namespace devices::pci {

namespace {

constexpr std::uint16_t kControlEnable = 1u << 15;
constexpr std::uint16_t kControlFunctionMask = 1u << 14;
constexpr std::uint32_t kVectorMasked = 1u;

}  // namespace

Msix::Msix(std::shared_ptr<MsiRouter> router, std::uint16_t vectors, std::uint8_t table_bar,
           std::uint32_t table_offset, std::uint8_t pba_bar, std::uint32_t pba_offset)
    : router_(std::move(router)),
      table_bar_(table_bar),
      table_offset_(table_offset),
      pba_bar_(pba_bar),
      pba_offset_(pba_offset),
      entries_(vectors) {
    if (vectors == 0 || vectors > kMaxVectors || table_bar > 5 || pba_bar > 5 ||
        table_offset % 8 != 0 || pba_offset % 8 != 0) {
        throw base::Error("MSI-X with {} vectors, table {}:{:#x}, PBA {}:{:#x} is not valid",
                          vectors, table_bar, table_offset, pba_bar, pba_offset);
    }
    for (auto& entry : entries_) {
        entry.eventfd = base::make_eventfd("an MSI-X vector");
        if (router_ != nullptr) {
            entry.gsi = router_->allocate();
            try {
                router_->hypervisor().assign_irqfd(entry.eventfd.get(), entry.gsi);
            } catch (...) {
                router_->release(entry.gsi);
                entry.gsi = 0;
                throw;
            }
        }
    }
}

Msix::~Msix() {
    if (router_ == nullptr) return;
    for (auto& entry : entries_) {
        if (entry.gsi == 0) continue;
        try {
            router_->hypervisor().deassign_irqfd(entry.eventfd.get(), entry.gsi);
        } catch (const std::exception& error) {
            vmm::log::warn("MSI-X teardown: {}", error.what());
        }
        router_->release(entry.gsi);
    }
}

void Msix::add_capability(PciConfigSpace& config) {
    std::array<std::uint8_t, 10> body{};
    const std::uint16_t control = static_cast<std::uint16_t>(vector_count() - 1);
    const std::uint32_t table = table_offset_ | table_bar_;
    const std::uint32_t pba = pba_offset_ | pba_bar_;
    std::memcpy(&body[0], &control, 2);
    std::memcpy(&body[2], &table, 4);
    std::memcpy(&body[6], &pba, 4);
    // Only Enable and Function Mask (bits 15 and 14 of Message Control) are writable.
    const std::array<std::uint8_t, 2> writable{0x00, 0xc0};
    capability_offset_ = config.add_capability(kCapabilityMsix, body, writable);
}

void Msix::control_written(const PciConfigSpace& config) {
    set_control(config.read16(capability_offset_ + 2));
}

void Msix::set_control(std::uint16_t control) {
    std::lock_guard lock(mutex_);
    const bool was_active = enabled_ && !function_masked_;
    enabled_ = (control & kControlEnable) != 0;
    function_masked_ = (control & kControlFunctionMask) != 0;
    route_shared_locked();
    if (!was_active && enabled_ && !function_masked_) unmasked_locked();
}

void Msix::set_bus_master(bool enabled) {
    std::lock_guard lock(mutex_);
    const bool was = bus_master_;
    bus_master_ = enabled;
    if (!enabled_ || was || !enabled) return;
    route_shared_locked();
    unmasked_locked();
}

bool Msix::enabled() const {
    std::lock_guard lock(mutex_);
    return enabled_;
}

bool Msix::deliverable(std::uint16_t vector) const {
    std::lock_guard lock(mutex_);
    return enabled_ && vector < entries_.size() && !masked_locked(entries_[vector]);
}

bool Msix::pending(std::uint16_t vector) const {
    std::lock_guard lock(mutex_);
    return vector < entries_.size() && entries_[vector].pending;
}

bool Msix::masked_locked(const Entry& entry) const {
    return function_masked_ || !bus_master_ || (entry.control & kVectorMasked) != 0;
}

void Msix::update_route_locked(Entry& entry) {
    if (router_ != nullptr && entry.route_dirty) {
        const std::uint64_t address = (std::uint64_t{entry.address_high} << 32) | entry.address_low;
        try {
            router_->route(entry.gsi, MsiMessage{address, entry.data});
        } catch (const std::exception& error) {
            // route_dirty stays set: the next delivery tries again.
            throw MsiRouteError("MSI-X route {:#x}/{:#x} refused: {}", address, entry.data,
                                error.what());
        }
        entry.route_dirty = false;
    }
}

void Msix::fire_locked(Entry& entry) {
    update_route_locked(entry);
    base::signal_eventfd(entry.eventfd.get());
}

void Msix::route_shared_locked() {
    if (!enabled_) return;
    for (auto& entry : entries_) {
        if (!entry.shared || !entry.route_dirty || masked_locked(entry)) continue;
        try {
            update_route_locked(entry);
        } catch (const std::exception& error) {
            // Runs on a vCPU for a guest's table write: the guest loses this
            // vector's interrupts, the VMM goes on.
            entry.route_dirty = false;
            vmm::log::warn("MSI-X: the route of a vector the kernel signals failed: {}",
                           error.what());
        }
    }
}

int Msix::share_eventfd(std::uint16_t vector) {
    std::lock_guard lock(mutex_);
    auto& entry = entries_.at(vector);
    entry.shared = true;
    route_shared_locked();
    return entry.eventfd.get();
}

void Msix::unshare_eventfds() {
    std::lock_guard lock(mutex_);
    for (auto& entry : entries_) entry.shared = false;
}

void Msix::unmasked_locked() {
    // Every deliverable vector fires even when one of them cannot be routed.
    std::optional<MsiRouteError> failed;
    for (auto& entry : entries_) {
        if (entry.pending && !masked_locked(entry)) {
            entry.pending = false;
            try {
                fire_locked(entry);
            } catch (const MsiRouteError& error) {
                if (!failed) failed = error;
            }
        }
    }
    if (failed) throw *failed;
}

bool Msix::signal(std::uint16_t vector) {
    std::lock_guard lock(mutex_);
    if (!enabled_) return false;
    if (vector >= entries_.size()) return true;  // the guest chose a vector that does not exist
    auto& entry = entries_[vector];
    if (masked_locked(entry)) {
        entry.pending = true;
    } else {
        fire_locked(entry);
    }
    return true;
}

void Msix::table_read(std::uint64_t offset, std::span<std::uint8_t> data) const {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < data.size(); ++i) {
        const std::uint64_t at = offset + i;
        const std::uint64_t index = at / kEntrySize;
        if (at < offset || index >= entries_.size()) {
            data[i] = 0;
            continue;
        }
        const auto& entry = entries_[index];
        const std::array<std::uint32_t, 4> words{entry.address_low, entry.address_high, entry.data,
                                                 entry.control};
        const std::size_t byte = at % kEntrySize;
        data[i] = static_cast<std::uint8_t>(words[byte / 4] >> (8 * (byte % 4)));
    }
}

void Msix::table_write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    bool unmasked_any = false;
    for (std::size_t i = 0; i < data.size(); ++i) {
        const std::uint64_t at = offset + i;
        const std::uint64_t index = at / kEntrySize;
        if (at < offset || index >= entries_.size()) continue;
        auto& entry = entries_[index];
        std::array<std::uint32_t*, 4> words{&entry.address_low, &entry.address_high, &entry.data,
                                            &entry.control};
        const std::size_t byte = at % kEntrySize;
        std::uint32_t& word = *words[byte / 4];
        const unsigned shift = 8 * (byte % 4);
        const std::uint32_t before = word;
        word = (word & ~(0xffu << shift)) | (std::uint32_t{data[i]} << shift);
        if (byte / 4 == 3) {
            // Only the mask bit of Vector Control is defined; the rest reads 0.
            word &= kVectorMasked;
            if ((before & kVectorMasked) && !(word & kVectorMasked)) unmasked_any = true;
        } else if (word != before) {
            entry.route_dirty = true;
        }
    }
    route_shared_locked();
    if (unmasked_any && enabled_) unmasked_locked();
}

void Msix::pba_read(std::uint64_t offset, std::span<std::uint8_t> data) const {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < data.size(); ++i) {
        const std::uint64_t at = offset + i;
        std::uint8_t byte = 0;
        for (unsigned bit = 0; bit < 8; ++bit) {
            const std::uint64_t vector = at * 8 + bit;
            if (at >= offset && at < pba_size_bytes() && vector < entries_.size() &&
                entries_[vector].pending) {
                byte |= static_cast<std::uint8_t>(1u << bit);
            }
        }
        data[i] = byte;
    }
}

void Msix::reset(PciConfigSpace& config) {
    reset();
    config.set16(capability_offset_ + 2, static_cast<std::uint16_t>(vector_count() - 1));
}

void Msix::reset() {
    std::lock_guard lock(mutex_);
    enabled_ = false;
    function_masked_ = false;
    for (auto& entry : entries_) {
        entry.address_low = entry.address_high = entry.data = 0;
        entry.control = kVectorMasked;
        entry.pending = false;
        entry.route_dirty = true;
        entry.shared = false;
    }
}

}  // namespace devices::pci
