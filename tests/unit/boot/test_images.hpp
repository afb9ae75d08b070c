// Synthetic kernel images and guest-memory helpers for the loader tests.
#pragma once

#include <asm/bootparam.h>
#include <elf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "vmm/guest_memory.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm::test {

using x86::GiB;
using x86::KiB;
using x86::MiB;

// A minimal bzImage: boot sector + setup header, setup sectors, and a
// protected-mode "kernel" filled with a recognisable pattern.
struct BzImageOptions {
    std::uint16_t version = 0x020f;
    std::uint8_t loadflags = LOADED_HIGH;
    std::uint16_t xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
    std::uint8_t setup_sects = 4;
    std::uint16_t boot_flag = 0xaa55;
    std::uint8_t header_jump = 0x6a;  // setup header ends at 0x202 + 0x6a = 0x26c, as in Linux 6.x
    std::uint32_t payload_size = 64 * KiB;
    std::uint32_t syssize_bytes = 64 * KiB;  // what the header claims
    std::uint32_t init_size = 8 * MiB;
    std::uint64_t pref_address = 16 * MiB;
    std::uint32_t kernel_alignment = 2 * MiB;
    std::uint8_t relocatable = 1;
    std::uint32_t cmdline_size = 2047;
    std::uint32_t initrd_addr_max = 0x7fff'ffff;
};

inline std::uint8_t payload_byte(std::size_t i) {
    return static_cast<std::uint8_t>(i * 7 + 3);
}

inline std::vector<std::uint8_t> make_bzimage(const BzImageOptions& options = {}) {
    const std::size_t sects = options.setup_sects == 0 ? 4 : options.setup_sects;
    const std::size_t kernel_offset = (sects + 1) * 512;
    std::vector<std::uint8_t> image(kernel_offset + options.payload_size, 0);

    setup_header header{};
    header.setup_sects = options.setup_sects;
    header.syssize = options.syssize_bytes / 16;
    header.boot_flag = options.boot_flag;
    header.jump = static_cast<std::uint16_t>(0xeb | (options.header_jump << 8));
    header.header = 0x53726448;  // "HdrS"
    header.version = options.version;
    header.loadflags = options.loadflags;
    header.code32_start = 0x100000;
    header.initrd_addr_max = options.initrd_addr_max;
    header.kernel_alignment = options.kernel_alignment;
    header.relocatable_kernel = options.relocatable;
    header.min_alignment = 21;
    header.xloadflags = options.xloadflags;
    header.cmdline_size = options.cmdline_size;
    header.pref_address = options.pref_address;
    header.init_size = options.init_size;
    header.vid_mode = 0xffff;
    std::memcpy(image.data() + 0x1f1, &header, sizeof(header));
    for (std::size_t i = 0; i < options.payload_size; ++i) {
        image[kernel_offset + i] = payload_byte(i);
    }
    return image;
}

// A minimal ELF64 vmlinux: one PT_LOAD at `paddr` and a PT_NOTE holding a
// GNU note and (optionally) the Xen PHYS32_ENTRY note.
struct ElfOptions {
    std::uint64_t paddr = 16 * MiB;
    std::uint64_t file_size = 64 * KiB;
    std::uint64_t memory_size = 128 * KiB;
    std::uint64_t entry_offset = 0x1000;  // PVH entry relative to paddr
    bool pvh_note = true;
    std::uint32_t pvh_desc_size = 8;
    unsigned char elf_class = ELFCLASS64;
    std::uint16_t type = ET_EXEC;
};

inline constexpr std::size_t kElfDataOffset = 4096;

inline std::vector<std::uint8_t> make_elf(const ElfOptions& options = {}) {
    std::vector<std::uint8_t> notes;
    const auto add_note = [&](const char* name, std::uint32_t name_size, std::uint32_t type,
                              const void* desc, std::uint32_t desc_size) {
        Elf64_Nhdr note{name_size, desc_size, type};
        const auto put = [&](const void* data, std::size_t size) {
            const auto* bytes = static_cast<const std::uint8_t*>(data);
            notes.insert(notes.end(), bytes, bytes + size);
            notes.resize((notes.size() + 3) & ~std::size_t{3}, 0);
        };
        put(&note, sizeof(note));
        put(name, name_size);
        put(desc, desc_size);
    };
    const std::uint8_t build_id[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    add_note("GNU", 4, NT_GNU_BUILD_ID, build_id, sizeof(build_id));
    if (options.pvh_note) {
        const std::uint64_t entry = options.paddr + options.entry_offset;
        add_note("Xen", 4, 18, &entry, options.pvh_desc_size);
    }

    const std::size_t notes_offset = sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr);
    std::vector<std::uint8_t> image(kElfDataOffset + options.file_size, 0);

    Elf64_Ehdr header{};
    std::memcpy(header.e_ident, ELFMAG, SELFMAG);
    header.e_ident[EI_CLASS] = options.elf_class;
    header.e_ident[EI_DATA] = ELFDATA2LSB;
    header.e_ident[EI_VERSION] = EV_CURRENT;
    header.e_type = options.type;
    header.e_machine = EM_X86_64;
    header.e_version = EV_CURRENT;
    header.e_entry = 0xffffffff81000000;
    header.e_phoff = sizeof(Elf64_Ehdr);
    header.e_ehsize = sizeof(Elf64_Ehdr);
    header.e_phentsize = sizeof(Elf64_Phdr);
    header.e_phnum = 2;
    std::memcpy(image.data(), &header, sizeof(header));

    Elf64_Phdr load{};
    load.p_type = PT_LOAD;
    load.p_flags = PF_R | PF_X;
    load.p_offset = kElfDataOffset;
    load.p_vaddr = 0xffffffff80000000 + options.paddr;
    load.p_paddr = options.paddr;
    load.p_filesz = options.file_size;
    load.p_memsz = options.memory_size;
    load.p_align = 2 * MiB;
    Elf64_Phdr note{};
    note.p_type = PT_NOTE;
    note.p_offset = notes_offset;
    note.p_filesz = notes.size();
    note.p_align = 4;
    std::memcpy(image.data() + sizeof(Elf64_Ehdr), &load, sizeof(load));
    std::memcpy(image.data() + sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr), &note, sizeof(note));
    std::memcpy(image.data() + notes_offset, notes.data(), notes.size());
    for (std::size_t i = 0; i < options.file_size; ++i) {
        image[kElfDataOffset + i] = payload_byte(i);
    }
    return image;
}

// Offset of the first program header (PT_LOAD) in a make_elf() image.
inline constexpr std::size_t kElfLoadPhdrOffset = sizeof(Elf64_Ehdr);

inline Elf64_Phdr read_phdr(const std::vector<std::uint8_t>& image, std::size_t offset) {
    Elf64_Phdr phdr;
    std::memcpy(&phdr, image.data() + offset, sizeof(phdr));
    return phdr;
}

inline void write_phdr(std::vector<std::uint8_t>& image, std::size_t offset,
                       const Elf64_Phdr& phdr) {
    std::memcpy(image.data() + offset, &phdr, sizeof(phdr));
}

// True when no page of guest RAM has been touched since creation. The
// memfd has no data at all until something faults a page in, so SEEK_DATA
// finding nothing proves the loader neither wrote nor even read guest RAM,
// without scanning (and so allocating) every page.
inline bool memory_untouched(const GuestMemory& memory) {
    errno = 0;
    return ::lseek(memory.memfd(), 0, SEEK_DATA) == -1 && errno == ENXIO;
}

inline boot_params read_zero_page(const GuestMemory& memory) {
    return memory.read<boot_params>(x86::kZeroPageAddress);
}

inline std::string read_c_string(const GuestMemory& memory, GuestAddress address) {
    std::string text;
    for (;;) {
        const auto c = memory.read<char>(address++);
        if (c == '\0') return text;
        text.push_back(c);
    }
}

}  // namespace vmm::test
