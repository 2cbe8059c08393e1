// Package smbios reads and writes the SMBIOS Type 11 (OEM Strings) structures that carry systemd
// credentials into a virtual machine.
//
// Reading follows the two ways a Linux guest exposes the firmware tables in sysfs:
//
//   - [ReadEntries] walks /sys/firmware/dmi/entries/11-N/raw for N = 0, 1, … the way systemd's
//     PID 1 does when it imports credentials (this is the authoritative path);
//   - [ReadTable] decodes the whole table from /sys/firmware/dmi/tables/{smbios_entry_point,DMI}
//     through github.com/digitalocean/go-smbios, with either a 32-bit (2.x) or a 64-bit (3.0)
//     entry point and with or without the end-of-table structure.
//
// Every path is relative to a sysfs root so that tests run on fixture trees.
//
// Writing ([Build]) produces a complete, valid table image (entry point, Type 11 structures,
// end-of-table) in the sysfs layout ([Table.WriteSysfs]) and in the single-file layout that
// `dmidecode --from-dump` reads ([Table.DumpBin]). credlink's local mode hands such a tree to the
// guest-agent instead of a VM's firmware.
//
// Limits: one structure holds at most 255 strings (its count byte) and the whole table at most
// 65535 bytes; strings cannot be empty or contain NUL, because NUL ends a string and an empty one
// ends the set.
package smbios
