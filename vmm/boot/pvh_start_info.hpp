// The Xen PVH boot ABI structures. Debian installs no header for them, so
// they are transcribed from Xen's public header
// xen/include/public/arch-x86/hvm/start_info.h (MIT licensed; the same file
// is include/xen/interface/hvm/start_info.h in Linux), whose comment gives
// the byte layout that the static_asserts below pin down.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmm::boot::pvh {

inline constexpr std::uint32_t kStartMagic = 0x336ec578;  // "xEn3" with 0x80 set in "E"
inline constexpr std::uint32_t kStartInfoVersion = 1;     // has the memory map fields

// Xen ELF note types (xen/include/public/elfnote.h); notes are named "Xen".
inline constexpr std::uint32_t kElfNotePhys32Entry = 18;  // XEN_ELFNOTE_PHYS32_ENTRY

struct StartInfo {  // struct hvm_start_info
    std::uint32_t magic;
    std::uint32_t version;
    std::uint32_t flags;
    std::uint32_t nr_modules;
    std::uint64_t modlist_paddr;
    std::uint64_t cmdline_paddr;
    std::uint64_t rsdp_paddr;
    std::uint64_t memmap_paddr;  // version 1+
    std::uint32_t memmap_entries;
    std::uint32_t reserved;
};

struct ModlistEntry {  // struct hvm_modlist_entry
    std::uint64_t paddr;
    std::uint64_t size;
    std::uint64_t cmdline_paddr;
    std::uint64_t reserved;
};

struct MemmapEntry {  // struct hvm_memmap_table_entry; type uses the e820 values
    std::uint64_t addr;
    std::uint64_t size;
    std::uint32_t type;
    std::uint32_t reserved;
};

static_assert(sizeof(StartInfo) == 56 && offsetof(StartInfo, modlist_paddr) == 16 &&
              offsetof(StartInfo, rsdp_paddr) == 32 && offsetof(StartInfo, memmap_paddr) == 40 &&
              offsetof(StartInfo, memmap_entries) == 48);
static_assert(sizeof(ModlistEntry) == 32);
static_assert(sizeof(MemmapEntry) == 24 && offsetof(MemmapEntry, type) == 16);

}  // namespace vmm::boot::pvh
