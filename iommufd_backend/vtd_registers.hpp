// Intel VT-d capability (CAP_REG) and extended capability (ECAP_REG)
// registers as IOMMU_GET_HW_INFO reports them (struct iommu_hw_info_vtd),
// decoded per the VT-d spec (sections 11.4.2 and 11.4.3) with the same bit
// positions as the kernel's drivers/iommu/intel/iommu.h.
#pragma once

#include <cstdint>
#include <string>

namespace iommufd_backend {

struct VtdRegisters {
    std::uint64_t cap = 0;
    std::uint64_t ecap = 0;
    std::uint32_t flags = 0;  // IOMMU_HW_INFO_VTD_* (errata)

    // --- CAP_REG ---
    std::uint64_t domains() const { return std::uint64_t{1} << (4 + 2 * (cap & 0x7)); }  // ND
    bool required_write_buffer_flush() const { return bit(cap, 4); }                     // RWBF
    bool caching_mode() const { return bit(cap, 7); }                                    // CM
    std::uint32_t sagaw() const { return (cap >> 8) & 0x1f; }  // supported stage-2 widths bitmap
    bool supports_39bit() const { return sagaw() & 0x2; }      // 3-level tables
    bool supports_48bit() const { return sagaw() & 0x4; }      // 4-level tables
    bool supports_57bit() const { return sagaw() & 0x8; }      // 5-level tables
    unsigned max_guest_address_width() const { return ((cap >> 16) & 0x3f) + 1; }       // MGAW
    bool zero_length_read() const { return bit(cap, 22); }                              // ZLR
    std::uint64_t fault_register_offset() const { return ((cap >> 24) & 0x3ff) * 16; }  // FRO
    std::uint32_t second_level_large_pages() const { return (cap >> 34) & 0xf; }        // SLLPS
    bool second_level_2m() const { return second_level_large_pages() & 0x1; }
    bool second_level_1g() const { return second_level_large_pages() & 0x2; }
    bool page_selective_invalidation() const { return bit(cap, 39); }                // PSI
    unsigned fault_recording_registers() const { return ((cap >> 40) & 0xff) + 1; }  // NFR
    unsigned max_address_mask() const { return (cap >> 48) & 0x3f; }                 // MAMV
    bool write_draining() const { return bit(cap, 54); }                             // DWD
    bool read_draining() const { return bit(cap, 55); }                              // DRD
    bool first_level_1g() const { return bit(cap, 56); }                             // FL1GP
    bool posted_interrupts() const { return bit(cap, 59); }                          // PI
    bool first_level_5level() const { return bit(cap, 60); }                         // FL5LP

    // --- ECAP_REG ---
    bool coherent() const { return bit(ecap, 0); }                 // C
    bool queued_invalidation() const { return bit(ecap, 1); }      // QI
    bool device_tlb() const { return bit(ecap, 2); }               // DT
    bool interrupt_remapping() const { return bit(ecap, 3); }      // IR
    bool extended_interrupt_mode() const { return bit(ecap, 4); }  // EIM (x2APIC)
    bool pass_through() const { return bit(ecap, 6); }             // PT
    bool snoop_control() const { return bit(ecap, 7); }            // SC
    std::uint64_t iotlb_register_offset() const { return ((ecap >> 8) & 0x3ff) * 16; }  // IRO
    unsigned max_handle_mask() const { return (ecap >> 20) & 0xf; }                     // MHMV
    bool memory_type() const { return bit(ecap, 25); }                                  // MTS
    bool nested_translation() const { return bit(ecap, 26); }                           // NEST
    bool page_requests() const { return bit(ecap, 29); }                                // PRS
    bool execute_requests() const { return bit(ecap, 30); }                             // ERS
    bool supervisor_requests() const { return bit(ecap, 31); }                          // SRS
    bool no_write_flag() const { return bit(ecap, 33); }                                // NWFS
    bool extended_accessed_flag() const { return bit(ecap, 34); }                       // EAFS
    unsigned pasid_size() const { return ((ecap >> 35) & 0x1f) + 1; }         // PSS + 1 bits
    bool pasid() const { return bit(ecap, 40); }                              // PASID
    bool scalable_mode() const { return bit(ecap, 43); }                      // SMTS
    bool second_level_accessed_dirty() const { return bit(ecap, 45); }        // SLADS
    bool second_level_translation() const { return bit(ecap, 46); }           // SSTS
    bool first_level_translation() const { return bit(ecap, 47); }            // FLTS
    bool scalable_mode_page_walk_coherency() const { return bit(ecap, 48); }  // SMPWCS

    // What the kernel's intel-iommu driver requires for nesting (a nesting
    // parent HWPT): scalable mode and NEST (nested_supported()).
    bool can_nest() const { return scalable_mode() && nested_translation(); }
    // ... and for dirty tracking (ssads_supported()).
    bool can_track_dirty() const {
        return scalable_mode() && second_level_accessed_dirty() &&
               scalable_mode_page_walk_coherency();
    }

    // One line: "VT-d cap 0x... ecap 0x...: 48-bit MGAW, 39/48-bit tables, CM, QI, IR, PT, ..."
    std::string describe() const;

  private:
    static bool bit(std::uint64_t value, unsigned n) { return (value >> n) & 1; }
};

}  // namespace iommufd_backend
