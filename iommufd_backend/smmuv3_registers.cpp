#include "iommufd_backend/smmuv3_registers.hpp"

#include <fmt/format.h>

namespace iommufd_backend {

unsigned SmmuV3Registers::output_address_size() const {
    // IDR5.OAS encoding: 0..6 -> 32, 36, 40, 42, 44, 48, 52 bits.
    static constexpr unsigned kBits[] = {32, 36, 40, 42, 44, 48, 52};
    const unsigned oas = idr[5] & 0x7;
    return oas < 7 ? kBits[oas] : 0;
}

std::string SmmuV3Registers::describe() const {
    return fmt::format(
        "SMMUv3 idr0 {:#x} idr1 {:#x} idr3 {:#x} idr5 {:#x} iidr {:#x} aidr {:#x}: S1 {} S2 {}, "
        "{}-bit SIDs, "
        "{}-bit SSIDs, {}-bit output, granules{}{}{}{}{}",
        idr[0], idr[1], idr[3], idr[5], iidr, aidr, stage1() ? "yes" : "no",
        stage2() ? "yes" : "no", sid_bits(), ssid_bits(), output_address_size(),
        granule_4k() ? " 4K" : "", granule_16k() ? " 16K" : "", granule_64k() ? " 64K" : "",
        ats() ? ", ATS" : "", pri() ? ", PRI" : "");
}

}  // namespace iommufd_backend
