// Package credential is credlink's model of a systemd credential and the rules systemd applies
// when it imports credentials from firmware.
//
// It provides:
//
//   - [Value], a byte string that refuses to print itself, so a stray %v, log attribute or JSON
//     encoding cannot leak a secret;
//   - [ValidName] and the size limits of systemd 252+ (1 MiB per credential, 1 MiB in total);
//   - [ParseOEMStrings], which turns SMBIOS Type 11 OEM strings
//     (io.systemd.credential:NAME=VALUE and io.systemd.credential.binary:NAME=BASE64) into a
//     [Set] exactly as systemd's import-creds.c does: name up to the first '=', first occurrence
//     wins, bad entries skipped one by one and reported with a reason that never holds the value;
//   - [Encode], the host side: picks the text or binary form per value and checks names, sizes
//     and the SMBIOS budget before anything is launched;
//   - [Source] implementations for the guest side: a systemd credentials directory, QEMU fw_cfg
//     and SMBIOS (through package smbios), combined with systemd's precedence by [Merge].
//
// The systemd rules reproduced here come from src/core/import-creds.c, src/shared/creds-util.c
// and src/basic/hexdecoct.c (systemd 252..257).
package credential
