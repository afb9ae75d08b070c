#include "iommufd_backend/vtd_registers.hpp"

#include <fmt/format.h>

namespace iommufd_backend {

std::string VtdRegisters::describe() const {
    std::string widths;
    for (const auto& [present, name] :
         {std::pair{supports_39bit(), "39"}, std::pair{supports_48bit(), "48"},
          std::pair{supports_57bit(), "57"}}) {
        if (!present) continue;
        if (!widths.empty()) widths += "/";
        widths += name;
    }
    std::string features;
    for (const auto& [present, name] : {
             std::pair{caching_mode(), "caching-mode"},
             std::pair{queued_invalidation(), "QI"},
             std::pair{interrupt_remapping(), "IR"},
             std::pair{extended_interrupt_mode(), "EIM"},
             std::pair{pass_through(), "PT"},
             std::pair{snoop_control(), "SC"},
             std::pair{device_tlb(), "DT"},
             std::pair{page_selective_invalidation(), "PSI"},
             std::pair{scalable_mode(), "scalable"},
             std::pair{nested_translation(), "NEST"},
             std::pair{pasid(), "PASID"},
             std::pair{page_requests(), "PRS"},
             std::pair{first_level_translation(), "FLTS"},
             std::pair{second_level_translation(), "SSTS"},
             std::pair{second_level_accessed_dirty(), "SLADS"},
         }) {
        if (present) features += fmt::format(", {}", name);
    }
    return fmt::format("VT-d cap {:#x} ecap {:#x}: {}-bit MGAW, {}-bit tables, {} domains{}", cap,
                       ecap, max_guest_address_width(), widths.empty() ? "no" : widths, domains(),
                       features);
}

}  // namespace iommufd_backend
