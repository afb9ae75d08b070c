// ARM SMMUv3 ID registers as IOMMU_GET_HW_INFO reports them (struct
// iommu_hw_info_arm_smmuv3, Linux 6.13), decoded per the SMMUv3 spec
// (6.3.1-6.3.6) for the fields the kernel documents as meaningful to VMMs.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace iommufd_backend {

struct SmmuV3Registers {
    std::array<std::uint32_t, 6> idr{};
    std::uint32_t iidr = 0;
    std::uint32_t aidr = 0;

    // IDR0
    bool stage2() const { return bit(idr[0], 0); }  // S2P
    bool stage1() const { return bit(idr[0], 1); }  // S1P
    unsigned table_formats() const {
        return (idr[0] >> 2) & 0x3;
    }                                                 // TTF: 1 AArch32, 2 AArch64, 3 both
    bool coherent() const { return bit(idr[0], 4); }  // COHACC
    bool ats() const { return bit(idr[0], 10); }      // ATS
    bool asid16() const { return bit(idr[0], 12); }   // ASID16
    bool pri() const { return bit(idr[0], 16); }      // PRI
    bool cd2l() const { return bit(idr[0], 19); }     // 2-level CD tables
    unsigned tt_endian() const { return (idr[0] >> 21) & 0x3; }            // TTENDIAN
    unsigned stall_model() const { return (idr[0] >> 24) & 0x3; }          // STALL_MODEL
    bool term_model() const { return bit(idr[0], 26); }                    // TERM_MODEL
    unsigned stream_table_levels() const { return (idr[0] >> 27) & 0x3; }  // ST_LEVEL
    // IDR1
    unsigned sid_bits() const { return idr[1] & 0x3f; }          // SIDSIZE
    unsigned ssid_bits() const { return (idr[1] >> 6) & 0x1f; }  // SSIDSIZE
    // IDR3
    bool range_invalidation() const { return bit(idr[3], 10); }  // RIL
    unsigned bbml() const { return (idr[3] >> 11) & 0x3; }       // BBML
    // IDR5
    unsigned output_address_size() const;  // OAS in bits
    bool granule_4k() const { return bit(idr[5], 4); }
    bool granule_16k() const { return bit(idr[5], 5); }
    bool granule_64k() const { return bit(idr[5], 6); }
    unsigned vax() const { return (idr[5] >> 10) & 0x3; }  // VAX: 52-bit VA

    // The kernel says S1P may be assumed when a nested HWPT can be made; both
    // stages present is what a nesting setup needs from the hardware.
    bool can_nest() const { return stage1() && stage2(); }

    std::string describe() const;

  private:
    static bool bit(std::uint32_t value, unsigned n) { return (value >> n) & 1; }
};

}  // namespace iommufd_backend
