#include "vmm/x86/page_tables.hpp"

#include <array>

#include "vmm/x86/layout.hpp"

namespace vmm::x86 {

namespace {

constexpr std::uint64_t kPageSize = 4096;
constexpr std::uint64_t kEntriesPerTable = 512;
constexpr std::uint64_t kLargePageSize = 2 * MiB;
constexpr std::uint64_t kPagePresent = 1ULL << 0;
constexpr std::uint64_t kPageWritable = 1ULL << 1;
constexpr std::uint64_t kPageSizeBit = 1ULL << 7;  // PS: the PDE maps a 2 MiB page

constexpr std::uint64_t kPml4Address = kPageTablesAddress;
constexpr std::uint64_t kPdptAddress = kPml4Address + kPageSize;
constexpr std::uint64_t kFirstPdAddress = kPdptAddress + kPageSize;
constexpr std::uint64_t kPageDirectories =
    kIdentityMappedSize / (kEntriesPerTable * kLargePageSize);

static_assert(kPageDirectories + 2 == kPageTablePages);
static_assert(kPageTablesAddress % kPageSize == 0);
static_assert(kPageTablesAddress + kPageTablePages * kPageSize <= kCmdlineAddress,
              "the page tables must end before the command line");

using Table = std::array<std::uint64_t, kEntriesPerTable>;

void write_table(GuestMemory& memory, std::uint64_t address, const Table& table) {
    static_assert(sizeof(Table) == kPageSize);
    memory.write(address, table);
}

}  // namespace

std::uint64_t write_identity_page_tables(GuestMemory& memory) {
    Table pml4{};
    pml4[0] = kPdptAddress | kPagePresent | kPageWritable;
    write_table(memory, kPml4Address, pml4);

    Table pdpt{};
    for (std::uint64_t pd = 0; pd < kPageDirectories; ++pd) {
        pdpt[pd] = (kFirstPdAddress + pd * kPageSize) | kPagePresent | kPageWritable;
    }
    write_table(memory, kPdptAddress, pdpt);

    for (std::uint64_t pd = 0; pd < kPageDirectories; ++pd) {
        Table directory{};
        for (std::uint64_t i = 0; i < kEntriesPerTable; ++i) {
            const std::uint64_t address = (pd * kEntriesPerTable + i) * kLargePageSize;
            directory[i] = address | kPagePresent | kPageWritable | kPageSizeBit;
        }
        write_table(memory, kFirstPdAddress + pd * kPageSize, directory);
    }
    return kPml4Address;
}

}  // namespace vmm::x86
