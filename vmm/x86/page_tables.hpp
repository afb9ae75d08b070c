// Identity page tables for the Linux 64-bit entry, which must start with
// paging on and the kernel, zero page and command line identity-mapped.
#pragma once

#include <cstdint>

#include "vmm/guest_memory.hpp"

namespace vmm::x86 {

// One PML4, one PDPT and four page directories of 2 MiB pages.
inline constexpr std::uint64_t kIdentityMappedSize = 4ULL << 30;
inline constexpr std::uint64_t kPageTablePages = 6;

// Writes the tables at kPageTablesAddress (whole pages, so stale entries
// from an earlier boot are cleared) and returns the PML4 address for CR3.
std::uint64_t write_identity_page_tables(GuestMemory& memory);

}  // namespace vmm::x86
