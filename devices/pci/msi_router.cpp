#include "devices/pci/msi_router.hpp"

#include <utility>
#include <vector>

#include "base/error.hpp"
#include "vmm/log.hpp"

namespace devices::pci {

namespace {

// KVM's own default table (arch/x86/kvm/irq_comm.c, default_routing): GSI
// 0-15 go to both the IOAPIC pin and the PIC, 16-23 to the IOAPIC only.
void add_default_routes(std::vector<kvm_irq_routing_entry>& entries) {
    for (std::uint32_t gsi = 0; gsi < MsiRouter::kFirstMsiGsi; ++gsi) {
        kvm_irq_routing_entry ioapic{};
        ioapic.gsi = gsi;
        ioapic.type = KVM_IRQ_ROUTING_IRQCHIP;
        ioapic.u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
        ioapic.u.irqchip.pin = gsi;
        entries.push_back(ioapic);
        if (gsi < 16) {
            kvm_irq_routing_entry pic{};
            pic.gsi = gsi;
            pic.type = KVM_IRQ_ROUTING_IRQCHIP;
            pic.u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
            pic.u.irqchip.pin = gsi % 8;
            entries.push_back(pic);
        }
    }
}

}  // namespace

std::uint32_t MsiRouter::allocate() {
    std::lock_guard lock(mutex_);
    for (std::uint32_t gsi = kFirstMsiGsi; gsi < kMaxGsi; ++gsi) {
        if (gsis_.emplace(gsi, std::nullopt).second) return gsi;
    }
    throw base::Error("no free interrupt routes: all {} KVM GSIs are in use", kMaxGsi);
}

void MsiRouter::release(std::uint32_t gsi) {
    std::lock_guard lock(mutex_);
    auto it = gsis_.find(gsi);
    if (it == gsis_.end()) return;
    const bool had_route = it->second.has_value();
    gsis_.erase(it);
    if (!had_route) return;
    // Runs from destructors: a failure must not escape. KVM keeps the stale
    // route until the next update replaces the table; nothing signals it.
    try {
        commit_locked();
    } catch (const std::exception& error) {
        vmm::log::warn("interrupt routing: releasing GSI {}: {}", gsi, error.what());
    }
}

void MsiRouter::route(std::uint32_t gsi, std::optional<MsiMessage> message) {
    std::lock_guard lock(mutex_);
    auto it = gsis_.find(gsi);
    if (it == gsis_.end()) throw base::Error("GSI {} was not allocated", gsi);
    if (it->second == message) return;
    // KVM keeps its old table when it refuses the new one; so does this
    // object, or a route KVM rejected would fail every later update of
    // every other device's vectors too.
    const auto previous = std::exchange(it->second, message);
    try {
        commit_locked();
    } catch (...) {
        it->second = previous;
        throw;
    }
}

std::size_t MsiRouter::routed_count() const {
    std::lock_guard lock(mutex_);
    std::size_t count = 0;
    for (const auto& [gsi, message] : gsis_) count += message.has_value() ? 1 : 0;
    return count;
}

void MsiRouter::commit_locked() {
    std::vector<kvm_irq_routing_entry> entries;
    add_default_routes(entries);
    for (const auto& [gsi, message] : gsis_) {
        if (!message) continue;
        kvm_irq_routing_entry entry{};
        entry.gsi = gsi;
        entry.type = KVM_IRQ_ROUTING_MSI;
        entry.u.msi.address_lo = static_cast<std::uint32_t>(message->address);
        entry.u.msi.address_hi = static_cast<std::uint32_t>(message->address >> 32);
        entry.u.msi.data = message->data;
        entries.push_back(entry);
    }
    hypervisor_->set_gsi_routing(entries);
}

}  // namespace devices::pci
