// Package sources reads, in a guest, the credentials that arrived, from each place systemd
// imports them, with the rules of the guest's systemd version:
//
//   - [SMBIOS]: SMBIOS Type 11 OEM strings, read as systemd reads /sys/firmware/dmi/entries/11-N
//     (per version: one page before 257) or, with FromTable, the whole table walked as Linux
//     does (package smbios), then parsed by credential.ParseOEMStrings;
//   - [FwCfg]: QEMU fw_cfg opt/io.systemd.credentials/NAME (the qemu_fw_cfg module);
//   - [Dir]: a systemd credentials directory ($CREDENTIALS_DIRECTORY, /run/credentials/@system).
//
// [Read] merges the readable ones with systemd's precedence (fw_cfg before SMBIOS) and reports
// how each went ([Report]: ok, partial, unavailable, error); one failing source never hides the
// others. Files are read through an os.Root with credential.ReadFile (package regfile). The
// credential model itself — names, sizes, OEM string parsing, Set — is package credential's;
// changing how fw_cfg or SMBIOS is read happens here.
package sources
