// Cross-checks the tables with ACPICA's own tools (Debian's acpica-tools):
// iasl disassembles every table, compiles a reference RSDP, and acpiexec
// loads the tables and evaluates the AML the guest will run.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "table_bytes.hpp"
#include "vmm/acpi/acpi_tables.hpp"
#include "vmm/acpi/table_writer.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm::acpi {
namespace {

namespace fs = std::filesystem;

// A fresh directory, removed with everything in it.
class TempDir {
  public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "vmm-acpi-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

bool have_tool(const char* tool) {
    return std::system(fmt::format("command -v {} >/dev/null 2>&1", tool).c_str()) == 0;
}

// Runs a shell command in `directory`, output to `log`; returns the exit code.
int run_in(const fs::path& directory, const std::string& command, const fs::path& log) {
    const int status = std::system(
        fmt::format("cd '{}' && {} >'{}' 2>&1", directory.string(), command, log.string()).c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string slurp(const fs::path& path) {
    std::ifstream file(path);
    std::stringstream buffer;
    buffer << file.rdbuf();
    return buffer.str();
}

void write_binary(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
    std::ofstream file(path, std::ios::binary);
    // ofstream::write takes chars; the bytes are copied as they are.
    file.write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
}

// Lines in iasl's console output or disassembly that mean it found a
// problem. What iasl 20200925 prints for broken tables: "ACPI Error: ...",
// "Firmware Warning (ACPI): Incorrect checksum ...", "/* Incorrect
// checksum, should be .. */", "Invalid zero length subtable", "**** ACPI
// table terminates in the middle of a data structure!", "Table [XXXX] is
// too long for file", "Binary file does not contain a valid ACPI table",
// "Could not parse ACPI tables".
std::vector<std::string> problem_lines(const std::string& text) {
    static const char* const kMarkers[] = {"Error",  "Warning",  "Incorrect",        "Invalid",
                                           "****",   "too long", "does not contain", "Could not",
                                           "Unknown"};
    std::vector<std::string> problems;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        for (const char* marker : kMarkers) {
            if (line.find(marker) != std::string::npos) {
                problems.push_back(line);
                break;
            }
        }
    }
    return problems;
}

std::string file_name(const PlacedTable& table) {
    return table.signature == "RSD PTR " ? "RSDP" : table.signature;
}

struct Disassembly {
    int exit_code;
    std::vector<std::string> problems;
    std::string dsl;
};

Disassembly disassemble(const TempDir& dir, const std::string& name,
                        const std::vector<std::uint8_t>& bytes) {
    write_binary(dir.path() / (name + ".dat"), bytes);
    const fs::path log = dir.path() / (name + ".log");
    Disassembly result;
    result.exit_code = run_in(dir.path(), fmt::format("iasl -d {}.dat", name), log);
    result.dsl = slurp(dir.path() / (name + ".dsl"));
    result.problems = problem_lines(slurp(log));
    for (auto& line : problem_lines(result.dsl)) result.problems.push_back(line);
    return result;
}

class Iasl : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!have_tool("iasl")) GTEST_SKIP() << "iasl (acpica-tools) is not installed";
    }
    TempDir dir;
};

TEST_F(Iasl, DisassemblesEveryTableCleanly) {
    for (const std::uint32_t cpus : {1u, 4u, 64u}) {
        for (const auto& table : build_acpi_tables({cpus})) {
            if (table.signature == "RSD PTR ") continue;  // see RsdpMatchesIaslsOwn
            const auto result = disassemble(dir, file_name(table), table.bytes);
            EXPECT_EQ(result.exit_code, 0) << table.signature;
            EXPECT_TRUE(result.problems.empty())
                << table.signature << " with " << cpus << " CPUs: " << result.problems.front();
            EXPECT_NE(result.dsl.find(table.signature), std::string::npos) << table.signature;
        }
    }
}

TEST_F(Iasl, SeesTheMadtEntries) {
    const auto tables = build_acpi_tables({4});
    const auto result = disassemble(dir, "APIC", test::find(tables, "APIC").bytes);
    std::size_t lapics = 0;
    for (std::size_t at = 0;
         (at = result.dsl.find("[Processor Local APIC]", at)) != std::string::npos; ++at) {
        ++lapics;
    }
    EXPECT_EQ(lapics, 4u);
    EXPECT_NE(result.dsl.find("[I/O APIC]"), std::string::npos);
    EXPECT_NE(result.dsl.find("[Interrupt Source Override]"), std::string::npos);
    EXPECT_NE(result.dsl.find("[Local APIC NMI]"), std::string::npos);
}

TEST_F(Iasl, SeesTheDsdtObjects) {
    const auto tables = build_acpi_tables({1});
    const auto result = disassemble(dir, "DSDT", test::find(tables, "DSDT").bytes);
    EXPECT_NE(result.dsl.find("Name (_S5, Package (0x04)"), std::string::npos) << result.dsl;
    EXPECT_NE(result.dsl.find("Device (COM1)"), std::string::npos) << result.dsl;
    EXPECT_NE(result.dsl.find("EisaId (\"PNP0501\")"), std::string::npos) << result.dsl;
    EXPECT_NE(result.dsl.find("IRQNoFlags ()\n                    {4}"), std::string::npos)
        << result.dsl;
    EXPECT_NE(result.dsl.find("Device (PCI0)"), std::string::npos) << result.dsl;
    EXPECT_NE(result.dsl.find("Name (_CBA, 0xE0000000)"), std::string::npos) << result.dsl;
    EXPECT_NE(result.dsl.find("Name (_PRT, Package (0x80)"), std::string::npos) << result.dsl;
    EXPECT_NE(result.dsl.find("Device (MRES)"), std::string::npos) << result.dsl;
    EXPECT_NE(result.dsl.find("EisaId (\"PNP0C02\")"), std::string::npos) << result.dsl;
    EXPECT_NE(result.dsl.find("Memory32Fixed (ReadWrite,\n"
                              "                    0xE0000000,         // Address Base\n"
                              "                    0x10000000,         // Address Length"),
              std::string::npos)
        << result.dsl;
}

TEST_F(Iasl, SeesTheMcfgAllocation) {
    const auto tables = build_acpi_tables({1});
    const auto result = disassemble(dir, "MCFG", test::find(tables, "MCFG").bytes);
    EXPECT_NE(result.dsl.find("Base Address : 00000000E0000000"), std::string::npos) << result.dsl;
    EXPECT_NE(result.dsl.find("Segment Group Number : 0000"), std::string::npos) << result.dsl;
    EXPECT_NE(result.dsl.find("Start Bus Number : 00"), std::string::npos) << result.dsl;
    EXPECT_NE(result.dsl.find("End Bus Number : FF"), std::string::npos) << result.dsl;
}

TEST_F(Iasl, SeesTheFadtRegisters) {
    const auto tables = build_acpi_tables({1});
    const auto result = disassemble(dir, "FACP", test::find(tables, "FACP").bytes);
    EXPECT_NE(result.dsl.find("Hardware Reduced (V5) : 1"), std::string::npos);
    EXPECT_NE(result.dsl.find("Reset Register Supported (V2) : 1"), std::string::npos);
    EXPECT_NE(result.dsl.find("Address : 0000000000000601"), std::string::npos);  // sleep status
}

// The checker must notice what iasl reports; otherwise the test above
// proves nothing.
TEST_F(Iasl, CheckCatchesABadChecksum) {
    auto fadt = test::find(build_acpi_tables({1}), "FACP").bytes;
    fadt[9] ^= 0x5a;
    EXPECT_FALSE(disassemble(dir, "FACP", fadt).problems.empty());
}

TEST_F(Iasl, CheckCatchesCorruptAml) {
    auto dsdt = test::find(build_acpi_tables({1}), "DSDT").bytes;
    dsdt[36 + 5] = 0x5b;  // the Package opcode after \_S5_ becomes an unknown extended opcode
    dsdt[36 + 6] = 0xff;
    dsdt[9] = 0;
    std::uint8_t sum = 0;
    for (const auto byte : dsdt) sum = static_cast<std::uint8_t>(sum + byte);
    dsdt[9] = static_cast<std::uint8_t>(0x100 - sum);
    const auto result = disassemble(dir, "DSDT", dsdt);
    EXPECT_TRUE(result.exit_code != 0 || !result.problems.empty());
}

TEST_F(Iasl, CheckCatchesAShortTable) {
    auto madt = test::find(build_acpi_tables({2}), "APIC").bytes;
    madt.erase(madt.end() - 3, madt.end());  // header length now runs past the file
    const auto result = disassemble(dir, "APIC", madt);
    EXPECT_TRUE(result.exit_code != 0 || !result.problems.empty());
}

// iasl 20200925 cannot disassemble a lone RSDP ("RSD PTR " is not a table
// signature to its file reader), so compile the RSDP we mean from iasl's
// data-table template; iasl computes both checksums itself, and the result
// must be our RSDP byte for byte.
TEST_F(Iasl, RsdpMatchesIaslsOwn) {
    const auto tables = build_acpi_tables({1});
    const std::string source = fmt::format(
        "[0008]                          Signature : \"RSD PTR \"\n"
        "[0001]                           Checksum : 00\n"
        "[0006]                             Oem ID : \"KVMVMM\"\n"
        "[0001]                           Revision : 02\n"
        "[0004]                       RSDT Address : 00000000\n"
        "[0004]                             Length : 00000024\n"
        "[0008]                       XSDT Address : {:016X}\n"
        "[0001]                  Extended Checksum : 00\n"
        "[0003]                           Reserved : 000000\n",
        test::find(tables, "XSDT").address);
    std::ofstream(dir.path() / "rsdp.asl") << source;
    const fs::path log = dir.path() / "rsdp.log";
    ASSERT_EQ(run_in(dir.path(), "iasl rsdp.asl", log), 0) << slurp(log);

    std::ifstream compiled(dir.path() / "rsdp.aml", std::ios::binary);
    const std::vector<std::uint8_t> expected{std::istreambuf_iterator<char>(compiled),
                                             std::istreambuf_iterator<char>()};
    EXPECT_EQ(tables.front().bytes, expected);
}

TEST_F(Iasl, AcpiexecLoadsTheTablesAndEvaluatesS5AndCom1) {
    if (!have_tool("acpiexec")) GTEST_SKIP() << "acpiexec is not installed";
    const auto tables = build_acpi_tables({2});
    for (const char* signature : {"DSDT", "FACP", "APIC", "MCFG"}) {
        write_binary(dir.path() / (std::string(signature) + ".dat"),
                     test::find(tables, signature).bytes);
    }
    const fs::path log = dir.path() / "acpiexec.log";
    const int exit_code =
        run_in(dir.path(),
               "acpiexec -b 'evaluate \\_S5; evaluate \\_SB.COM1._HID; evaluate \\_SB.COM1._CRS' "
               "DSDT.dat FACP.dat APIC.dat MCFG.dat </dev/null",
               log);
    const std::string output = slurp(log);
    EXPECT_EQ(exit_code, 0) << output;
    const auto problems = problem_lines(output);
    EXPECT_TRUE(problems.empty()) << problems.front();
    EXPECT_NE(output.find("[Integer] = 0000000000000005"), std::string::npos) << output;
    EXPECT_NE(output.find("[Integer] = 000000000105D041"), std::string::npos) << output;
    EXPECT_NE(output.find("47 01 F8 03 F8 03 00 08 22 10 00 79 00"), std::string::npos) << output;
}

// The value after "Name : " on a line of acpiexec's resource dump.
std::optional<std::uint64_t> dump_value(const std::string& line, const std::string& name) {
    const std::string key = name + " : ";
    const auto at = line.find(key);
    if (at == std::string::npos || line.find_first_not_of(' ') != at) return std::nullopt;
    return std::stoull(line.substr(at + key.size()), nullptr, 16);
}

struct RoutedPin {
    std::uint64_t address = 0, pin = 0, gsi = 0;
    bool static_source = false;
};

// acpiexec's "resources" command runs ACPICA's own _PRT and _CRS
// conversion (AcpiGetIrqRoutingTable, AcpiWalkResources), the code Linux
// calls, and prints what it decoded.
struct ResourceDump {
    std::vector<RoutedPin> routes;
    std::string output;
    int exit_code = -1;
};

ResourceDump dump_resources(const TempDir& dir, const std::vector<std::uint8_t>& dsdt,
                            const std::vector<std::uint8_t>& fadt) {
    write_binary(dir.path() / "DSDT.dat", dsdt);
    write_binary(dir.path() / "FACP.dat", fadt);
    const fs::path log = dir.path() / "resources.log";
    ResourceDump dump;
    dump.exit_code = run_in(dir.path(), "acpiexec -b resources DSDT.dat FACP.dat </dev/null", log);
    dump.output = slurp(log);
    std::istringstream lines(dump.output);
    bool in_prt = false;
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with("Evaluating ") || line.starts_with("Device: ")) {
            in_prt = line == "Evaluating _PRT";
        } else if (!in_prt) {
            continue;
        } else if (line.find("PCI IRQ Routing Table Package") != std::string::npos) {
            dump.routes.emplace_back();
        } else if (dump.routes.empty()) {
            continue;
        } else if (const auto address = dump_value(line, "Address")) {
            dump.routes.back().address = *address;
        } else if (const auto pin = dump_value(line, "Pin")) {
            dump.routes.back().pin = *pin;
        } else if (const auto gsi = dump_value(line, "Source Index")) {
            dump.routes.back().gsi = *gsi;
        } else if (line.find("Source : [NULL NAMESTRING]") != std::string::npos) {
            dump.routes.back().static_source = true;
        }
    }
    return dump;
}

TEST_F(Iasl, AcpiexecRoutesEveryPciPinAndReservesTheEcamWindow) {
    if (!have_tool("acpiexec")) GTEST_SKIP() << "acpiexec is not installed";
    const auto tables = build_acpi_tables({1});
    const auto dump =
        dump_resources(dir, test::find(tables, "DSDT").bytes, test::find(tables, "FACP").bytes);
    EXPECT_EQ(dump.exit_code, 0) << dump.output;
    const auto problems = problem_lines(dump.output);
    EXPECT_TRUE(problems.empty()) << problems.front();

    ASSERT_EQ(dump.routes.size(), 128u) << dump.output;
    for (std::uint32_t slot = 0; slot < 32; ++slot) {
        for (std::uint32_t pin = 0; pin < 4; ++pin) {
            const auto& route = dump.routes[slot * 4 + pin];
            EXPECT_EQ(route.address, (slot << 16) | 0xffffu);
            EXPECT_EQ(route.pin, pin);
            EXPECT_TRUE(route.static_source) << "slot " << slot << " pin " << pin;
            EXPECT_EQ(route.gsi, x86::pci_intx_gsi(slot, pin)) << "slot " << slot << " pin " << pin;
        }
    }
    // \_SB.MRES._CRS as Linux's is_acpi_reserved() walks it.
    const auto mres = dump.output.find("Device: \\_SB.MRES");
    ASSERT_NE(mres, std::string::npos) << dump.output;
    const std::string mres_dump = dump.output.substr(mres);
    EXPECT_NE(mres_dump.find("32-Bit Fixed Memory Range Resource\n"
                             "              Write Protect : ReadWrite\n"
                             "                    Address : E0000000\n"
                             "             Address Length : 10000000"),
              std::string::npos)
        << mres_dump;
}

// The check above must notice a _PRT entry ACPICA refuses.
TEST_F(Iasl, AcpiexecCatchesABadPrtEntry) {
    if (!have_tool("acpiexec")) GTEST_SKIP() << "acpiexec is not installed";
    const auto tables = build_acpi_tables({1});
    auto dsdt = test::find(tables, "DSDT").bytes;
    // Name (_PRT, Package: NameOp "_PRT" PackageOp PkgLength(2) count,
    // then the first entry's PackageOp PkgLength(1) count: make it 3.
    const std::string prt = "_PRT";
    const auto at = std::search(dsdt.begin(), dsdt.end(), prt.begin(), prt.end()) - dsdt.begin();
    ASSERT_EQ(dsdt.at(at + 8), 0x12);
    dsdt.at(at + 10) = 3;
    dsdt[9] = 0;
    dsdt[9] = checksum_byte(dsdt);
    const auto dump = dump_resources(dir, dsdt, test::find(tables, "FACP").bytes);
    EXPECT_FALSE(problem_lines(dump.output).empty()) << dump.output;
}

}  // namespace
}  // namespace vmm::acpi
