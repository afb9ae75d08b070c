#include "vmm/acpi/fadt.hpp"

#include <cstddef>

#include "vmm/acpi/table_writer.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm::acpi {

namespace {

// Everything after the common header, field for field as in ACPI 6.5
// table 5.9 (Linux: struct acpi_table_fadt in include/acpi/actbl.h).
struct [[gnu::packed]] FadtBody {
    std::uint32_t firmware_ctrl;
    std::uint32_t dsdt;
    std::uint8_t reserved0;
    std::uint8_t preferred_pm_profile;
    std::uint16_t sci_int;
    std::uint32_t smi_cmd;
    std::uint8_t acpi_enable;
    std::uint8_t acpi_disable;
    std::uint8_t s4bios_req;
    std::uint8_t pstate_cnt;
    std::uint32_t pm1a_evt_blk;
    std::uint32_t pm1b_evt_blk;
    std::uint32_t pm1a_cnt_blk;
    std::uint32_t pm1b_cnt_blk;
    std::uint32_t pm2_cnt_blk;
    std::uint32_t pm_tmr_blk;
    std::uint32_t gpe0_blk;
    std::uint32_t gpe1_blk;
    std::uint8_t pm1_evt_len;
    std::uint8_t pm1_cnt_len;
    std::uint8_t pm2_cnt_len;
    std::uint8_t pm_tmr_len;
    std::uint8_t gpe0_blk_len;
    std::uint8_t gpe1_blk_len;
    std::uint8_t gpe1_base;
    std::uint8_t cst_cnt;
    std::uint16_t p_lvl2_lat;
    std::uint16_t p_lvl3_lat;
    std::uint16_t flush_size;
    std::uint16_t flush_stride;
    std::uint8_t duty_offset;
    std::uint8_t duty_width;
    std::uint8_t day_alrm;
    std::uint8_t mon_alrm;
    std::uint8_t century;
    std::uint16_t iapc_boot_arch;
    std::uint8_t reserved1;
    std::uint32_t flags;
    GenericAddress reset_reg;
    std::uint8_t reset_value;
    std::uint16_t arm_boot_arch;
    std::uint8_t fadt_minor_version;
    std::uint64_t x_firmware_ctrl;
    std::uint64_t x_dsdt;
    GenericAddress x_pm1a_evt_blk;
    GenericAddress x_pm1b_evt_blk;
    GenericAddress x_pm1a_cnt_blk;
    GenericAddress x_pm1b_cnt_blk;
    GenericAddress x_pm2_cnt_blk;
    GenericAddress x_pm_tmr_blk;
    GenericAddress x_gpe0_blk;
    GenericAddress x_gpe1_blk;
    GenericAddress sleep_control_reg;
    GenericAddress sleep_status_reg;
    char hypervisor_vendor_identity[8];
};

constexpr std::size_t kHeaderSize = sizeof(TableHeader);
static_assert(kHeaderSize + sizeof(FadtBody) == kFadtLength);
static_assert(kHeaderSize + offsetof(FadtBody, iapc_boot_arch) == 109);
static_assert(kHeaderSize + offsetof(FadtBody, flags) == kFadtFlagsOffset);
static_assert(kHeaderSize + offsetof(FadtBody, reset_reg) == kFadtResetRegOffset);
static_assert(kHeaderSize + offsetof(FadtBody, reset_value) == kFadtResetValueOffset);
static_assert(kHeaderSize + offsetof(FadtBody, fadt_minor_version) == 131);
static_assert(kHeaderSize + offsetof(FadtBody, x_dsdt) == kFadtXDsdtOffset);
static_assert(kHeaderSize + offsetof(FadtBody, sleep_control_reg) == kFadtSleepControlOffset);
static_assert(kHeaderSize + offsetof(FadtBody, sleep_status_reg) == kFadtSleepStatusOffset);

}  // namespace

std::vector<std::uint8_t> build_fadt(std::uint64_t dsdt_address) {
    FadtBody body{};
    // Only X_DSDT: the spec wants DSDT zero when X_DSDT is used.
    body.x_dsdt = dsdt_address;
    // Hardware-reduced ACPI, as in Cloud Hypervisor and Firecracker: Linux
    // then skips the PM1/GPE/SCI hardware and the legacy PIC, and powers
    // off through the sleep registers (drivers/acpi/acpica/hwesleep.c,
    // which refuses to run unless both sleep registers are present).
    body.flags = kFadtHwReducedAcpi | kFadtResetRegSupported | kFadtPowerButton | kFadtSleepButton;
    // No VGA to probe and no CMOS RTC (the VMM answers neither). The 8042
    // bit stays clear so Linux does not probe the reset-only i8042 as a
    // keyboard controller; its 0xfe reset command still works without it.
    body.iapc_boot_arch = kBootArchNoVga | kBootArchNoCmosRtc;
    // Linux's acpi_reboot() wants an 8-bit register at bit offset 0.
    body.reset_reg = io_port_register(x86::kAcpiSleepControlPort);
    body.reset_value = x86::kAcpiResetValue;
    body.fadt_minor_version = kFadtMinorRevision;
    // The guest writes (SLP_TYP << 2) | SLP_EN to power off, and the status
    // register's WAK_STS is what it polls afterwards.
    body.sleep_control_reg = io_port_register(x86::kAcpiSleepControlPort);
    body.sleep_status_reg = io_port_register(x86::kAcpiSleepStatusPort);
    std::memcpy(body.hypervisor_vendor_identity, "KVMVMM  ",
                sizeof(body.hypervisor_vendor_identity));

    TableWriter table("FACP", kFadtRevision, "KVMVFACP");
    table.append(body);
    return std::move(table).finish();
}

}  // namespace vmm::acpi
