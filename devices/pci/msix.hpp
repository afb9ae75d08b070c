// MSI-X emulation shared by every emulated PCI device (and usable by VFIO
// passthrough, which traps the table and PBA too): the capability in config
// space, the vector table and the pending-bit array in a BAR, and delivery.
//
// Each vector owns an eventfd bound to its own GSI with KVM_IRQFD. Delivery
// writes that eventfd, so a device thread interrupts the guest without any
// ioctl. The route (address/data) is pushed to KVM lazily, on the first
// delivery after the guest changed it, because Linux writes an entry in three
// dword stores and each KVM_SET_GSI_ROUTING is expensive. A masked vector
// sets its pending bit instead and fires when unmasked, as the spec says.
// So does every vector while the function's Bus Master Enable is off: MSI-X
// messages are memory writes, which a function must not issue then.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "base/error.hpp"
#include "base/unique_fd.hpp"
#include "devices/pci/msi_router.hpp"
#include "devices/pci/pci_config_space.hpp"

namespace devices::pci {

// KVM refused the route of a vector (KVM_SET_GSI_ROUTING failed): the
// guest programmed something it does not take, or the host is short of
// memory. Its owner fails the device; other devices are not affected.
class MsiRouteError : public base::Error {
  public:
    using base::Error::Error;
};

class Msix {
  public:
    static constexpr std::uint16_t kMaxVectors = 2048;
    static constexpr std::uint32_t kEntrySize = 16;

    // `router` may be null (unit tests): vectors then only signal their
    // eventfds. Throws base::Error on a bad vector count.
    Msix(std::shared_ptr<MsiRouter> router, std::uint16_t vectors, std::uint8_t table_bar,
         std::uint32_t table_offset, std::uint8_t pba_bar, std::uint32_t pba_offset);
    ~Msix();
    Msix(const Msix&) = delete;
    Msix& operator=(const Msix&) = delete;

    // Adds the MSI-X capability (disabled, function unmasked) to `config`.
    void add_capability(PciConfigSpace& config);
    std::uint16_t capability_offset() const { return capability_offset_; }
    // Call after any config write that overlaps the capability. Throws
    // MsiRouteError when a pending vector it unmasks cannot be routed (the
    // new state is kept; only that interrupt is lost).
    void control_written(const PciConfigSpace& config);
    // The same for a device that keeps the capability's bytes itself (VFIO
    // passthrough emulates it at the hardware's offset): `control` is the
    // Message Control register as the guest left it.
    void set_control(std::uint16_t control);
    // The function's Bus Master Enable (on at construction, for functions
    // that do not emulate the command register). Off: vectors only collect
    // pending bits; on again: the pending ones fire (MsiRouteError as above).
    void set_bus_master(bool enabled);

    std::uint16_t vector_count() const { return static_cast<std::uint16_t>(entries_.size()); }
    std::uint32_t table_size_bytes() const { return vector_count() * kEntrySize; }
    std::uint32_t pba_size_bytes() const { return ((vector_count() + 63) / 64) * 8; }
    std::uint8_t table_bar() const { return table_bar_; }
    std::uint32_t table_offset() const { return table_offset_; }
    std::uint8_t pba_bar() const { return pba_bar_; }
    std::uint32_t pba_offset() const { return pba_offset_; }

    // Guest accesses relative to the start of the table / PBA. Any offset
    // and size is accepted; out-of-range bytes read as zero.
    void table_read(std::uint64_t offset, std::span<std::uint8_t> data) const;
    // Throws MsiRouteError as control_written() does.
    void table_write(std::uint64_t offset, std::span<const std::uint8_t> data);
    void pba_read(std::uint64_t offset, std::span<std::uint8_t> data) const;

    bool enabled() const;
    // Whether a message of `vector` would reach the guest now: MSI-X on,
    // neither the function nor the vector masked, bus mastering on. False
    // for a vector that does not exist.
    bool deliverable(std::uint16_t vector) const;
    // Interrupts the guest with `vector`. Returns false when MSI-X is off
    // (the caller may use INTx instead); a bad vector number is ignored.
    // Throws MsiRouteError when the vector's new route cannot be pushed.
    bool signal(std::uint16_t vector);
    // Back to power-on state: disabled, every vector masked, nothing pending.
    void reset(PciConfigSpace& config);
    // The same for a device that keeps Message Control itself (set_control).
    void reset();

    // The eventfd a vector fires (tests read it; VFIO hands it to the kernel).
    int vector_eventfd(std::uint16_t vector) const { return entries_.at(vector).eventfd.get(); }
    bool pending(std::uint16_t vector) const;

    // Hands `vector`'s eventfd to a writer that bypasses signal() (vhost in
    // the host kernel). Lazy routing would never run for its writes, so the
    // route is pushed now and again whenever the guest changes the entry,
    // once it is unmasked (Linux masks an entry around rewriting it). KVM
    // injects such writes even while the vector is masked: no pending bit.
    // Throws std::out_of_range for a vector that does not exist.
    int share_eventfd(std::uint16_t vector);
    // Every vector back to lazy routing: nobody else writes them any more.
    void unshare_eventfds();

  private:
    struct Entry {
        std::uint32_t address_low = 0;
        std::uint32_t address_high = 0;
        std::uint32_t data = 0;
        std::uint32_t control = 1;  // bit 0: masked (power-on default)
        bool pending = false;
        bool route_dirty = true;
        bool shared = false;  // share_eventfd(): routed eagerly
        std::uint32_t gsi = 0;
        base::UniqueFd eventfd;
    };
    bool masked_locked(const Entry& entry) const;
    void update_route_locked(Entry& entry);
    void fire_locked(Entry& entry);
    void unmasked_locked();
    void route_shared_locked();

    std::shared_ptr<MsiRouter> router_;
    std::uint8_t table_bar_;
    std::uint32_t table_offset_;
    std::uint8_t pba_bar_;
    std::uint32_t pba_offset_;
    std::uint16_t capability_offset_ = 0;

    mutable std::mutex mutex_;
    std::vector<Entry> entries_;
    bool enabled_ = false;
    bool function_masked_ = false;
    bool bus_master_ = true;
};

}  // namespace devices::pci
