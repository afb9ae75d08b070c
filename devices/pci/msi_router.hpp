// Owns the VM's GSI routing table. KVM_SET_GSI_ROUTING replaces the whole
// table, so one object keeps every entry: KVM's default IOAPIC/PIC routes
// for GSIs 0-23 (legacy devices keep working) plus one MSI route per
// allocated GSI. Devices allocate GSIs, point them at an MSI address/data
// pair and bind an irqfd to them. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "devices/pci/hypervisor.hpp"

namespace devices::pci {

struct MsiMessage {
    std::uint64_t address = 0;
    std::uint32_t data = 0;
    bool operator==(const MsiMessage&) const = default;
};

class MsiRouter {
  public:
    // GSIs below this are the IOAPIC's pins.
    static constexpr std::uint32_t kFirstMsiGsi = 24;
    // KVM_MAX_IRQ_ROUTES on x86.
    static constexpr std::uint32_t kMaxGsi = 4096;

    // Shared ownership everywhere below: devices live as long as the buses
    // that hold them, which may outlive whoever created the router.
    explicit MsiRouter(std::shared_ptr<Hypervisor> hypervisor)
        : hypervisor_(std::move(hypervisor)) {}

    // A new GSI with no route yet. Throws base::Error when all are taken.
    std::uint32_t allocate();
    // Never throws (destructors call it).
    void release(std::uint32_t gsi);

    // Routes `gsi` to `message` (nullopt: no route, the GSI injects
    // nothing) and pushes the table to KVM when it changed. When KVM refuses
    // the table, throws and keeps the previous route, so that one bad entry
    // does not poison later updates.
    void route(std::uint32_t gsi, std::optional<MsiMessage> message);

    Hypervisor& hypervisor() { return *hypervisor_; }
    std::size_t routed_count() const;

  private:
    void commit_locked();

    std::shared_ptr<Hypervisor> hypervisor_;
    mutable std::mutex mutex_;
    std::map<std::uint32_t, std::optional<MsiMessage>> gsis_;
};

}  // namespace devices::pci
