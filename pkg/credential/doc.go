// Package credential is credlink's model of a systemd credential and the rules systemd applies
// when it imports credentials from firmware.
//
// It provides:
//
//   - [Value], a byte string that refuses to print itself, so a stray %v, log attribute or JSON
//     encoding cannot leak a secret;
//   - [ValidName] and the size limits of systemd 252+ (1 MiB per credential, 1 MiB in total);
//   - [Systemd], the version whose import rules apply, with the rules that differ between
//     versions (URL-safe base64 from 255, whole Type 11 entries from 257, vmm.notify_socket
//     from 254);
//   - [ParseOEMStrings], which turns SMBIOS Type 11 OEM strings
//     (io.systemd.credential:NAME=VALUE and io.systemd.credential.binary:NAME=BASE64) into a
//     [Set] exactly as a given systemd's import-creds.c does: name up to the first '=', first
//     occurrence wins, bad entries skipped one by one and reported with a reason that never holds
//     the value;
//   - [Encode], the host side: picks the text or binary form per value, checks names, sizes
//     and the SMBIOS budget before anything is launched, and groups the strings into as many
//     Type 11 structures as the delivery can carry;
//   - the guest-side readers of SMBIOS, fw_cfg and credentials directories live in package
//     sources, which builds [Set] values with the rules here;
//   - [ReadFile] and [ReadPath]: credential files read with package regfile's one bounded reader
//     (regular files only, at most MaxSize, never blocking on a FIFO), for the guest's sources
//     and host-launcher alike;
//   - the words host and guest share: the control credentials ([AckCredential], [KeyCredential],
//     [VMCredential], [NotifySocketCredential], [IsControl]), the verification [Status] values
//     and the source names ([SourceSMBIOS], [SourceFwCfg], [SourceCredentials], [SourceHost]).
//
// # Conformance
//
// The import rules, where they come from, in which systemd versions, what we do and the test
// that fails when we stop doing it (the structural rules of the SMBIOS entries and table are in
// package smbios). Files are systemd's: src/core/import-creds.c, src/shared/smbios11.c,
// src/shared/creds-util.c, src/basic/hexdecoct.c.
//
//	rule                                          source                                    systemd  ours                                      test
//	only io.systemd.credential: and               import-creds.c parse_smbios_strings       252+     others counted in Set.Ignored             TestParseOEMStrings/others_ignored
//	  io.systemd.credential.binary: strings
//	name runs to the first '='; no '=' skips      parse_smbios_strings                      252+     Problem ErrNoEquals, nothing shown        TestParseOEMStrings/name_to_first_equals,
//	  the string with a warning                                                                                                                …/no_equals
//	valid name: not empty, . or .., no '/',       creds-util.c credential_name_valid        252+     ValidName                                 TestValidName, TestParseOEMStrings/bad_names
//	  <= 255 bytes, 0x20–0x7E, no ':'
//	text value verbatim (no newline added or      parse_smbios_strings                      252+     verbatim                                  TestParseOEMStrings/value_verbatim…
//	  stripped)
//	base64: '=' padding required, no leftover     hexdecoct.c unbase64mem, unbase64_next    252+     DecodeBase64 (Go's strict decoder)        TestParseOEMStrings/bad_base64,
//	  bits, nothing after padding, " \t\n\r"                                                                                                   …/binary_whitespace
//	  skipped anywhere
//	URL-safe '-' and '_' decode like '+' and      hexdecoct.c unbase64char (PR 29848)       255+     DecodeBase64(data, v); below 255 the      TestParseOEMStringsBySystemd
//	  '/', alphabets mixed freely                                                                    error says so
//	1 MiB per credential, 1 MiB in total,         import-creds.c credential_size_ok         252+     Set.Add, same order                       TestParseOEMStrings/size_limits,
//	  checked before the duplicate check                                                                                                       …/oversize_duplicate_does_not_block
//	first credential of a name wins               open_credential_file_for_write (O_EXCL)   252+     Set.Add                                   TestParseOEMStrings/first_wins
//	fw_cfg before SMBIOS                          import_credentials_trusted                252+     Read(fwcfg, smbios) merges in order       TestSMBIOSSourceAndPrecedence (pkg/sources)
//	an entry longer than the read limit: the      smbios11.c read_smbios11_field            252–256  the cut credential is imported cut and    TestSMBIOSSourceBySystemd (pkg/sources),
//	  string crossing it is imported cut (or                                                         marked (Credential.Cut: wrong_length);    TestSystemdConformance (cmd/guest-agent),
//	  skipped when its base64 no longer                                                              lost ones are Problems (ErrCutOff:        TestCutShort (pkg/verify)
//	  decodes), the strings after it are lost                                                        invalid); the source is partial
//	a malformed entry ends the walk, earlier      import_credentials_smbios                 252+     kept; the source is partial, with why     TestReadReportsEverySource (pkg/sources)
//	  ones kept
//	no entries/ (dmi_sysfs not loaded): nothing   import_credentials_smbios (ENOENT)        252+     source unavailable, detail says so        TestReadReportsEverySource (pkg/sources)
//	  imported from SMBIOS
//	vmm.notify_socket READY=1                     src/core/manager.c                        254+     Systemd.VMMNotify: host-launcher refuses  TestOptionErrors/wait-guest-boot…
//	                                                                                                 --wait-guest-boot below 254               (cmd/host-launcher)
//	a Type 11 structure holds 255 strings;        SMBIOS count byte; systemd reads every    252+     Encode groups strings into structures;    TestEncodeStructures
//	  systemd reads every entries/11-N            entries/11-N                                       a delivery of one structure names the
//	                                                                                                 credential that does not fit
//
// The guest-agent learns the version from the systemd it runs under (`systemctl --version`, or
// --systemd-version) and reports it (check output, credlink_systemd_rules_version); unknown
// means the newest rules. The version boundaries come from the systemd pull requests named
// above and from guests measured here (Debian 12's 252, bookworm-backports' 254, Debian 13's
// 257), not from reading every tagged release.
package credential
