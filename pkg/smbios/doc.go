// Package smbios reads and writes the SMBIOS Type 11 (OEM Strings) structures that carry systemd
// credentials into a virtual machine.
//
// Reading yields raw Type 11 structures, from either of the two places a Linux guest exposes
// them in sysfs, and one walk turns them into strings the way systemd does:
//
//   - [ReadEntries] reads /sys/firmware/dmi/entries/11-N/raw for N = 0, 1, … as systemd's PID 1
//     does when it imports credentials (this is the authoritative path);
//   - [ReadTable] decodes /sys/firmware/dmi/tables/{smbios_entry_point,DMI} with the rules of
//     Linux's dmi_decode_table (entry point parsed by github.com/digitalocean/go-smbios), 32-bit
//     (2.x) or 64-bit (3.0) entry point, with or without the end-of-table structure, and returns
//     the Type 11 structures byte for byte as dmi-sysfs would expose them;
//   - [Import] applies systemd's per-entry checks and read limit to either.
//
// Every path is relative to a sysfs root so that tests run on fixture trees.
//
// Writing: [Structure] builds one complete Type 11 structure (what QEMU's -smbios file= loads);
// [Build] a complete table image (entry point, Type 11 structures, end-of-table) in the sysfs
// layout ([Table.WriteSysfs]) and in the single-file layout of `dmidecode --from-dump`
// ([Table.DumpBin]); [WriteTree] is the one table-to-sysfs pipeline (local mode, fixtures).
//
// Limits ([MaxStrings], [MaxTable32], [OEMHeaderSize], [EntryReadPage], [EntryReadFull],
// [StructureSize]) are defined here and nowhere else.
//
// # Conformance
//
// Each structural rule of both read paths, where it comes from, what we do, and the test that
// fails when we stop doing it. systemd's code is src/shared/smbios11.c read_smbios11_field
// (256 and newer; the same checks sit inline in src/core/import-creds.c
// import_credentials_smbios before) and src/core/import-creds.c; Linux's is
// drivers/firmware/dmi_scan.c dmi_decode_table and drivers/firmware/dmi-sysfs.c.
//
//	rule                                          source                                   systemd   ours                                    test
//	entries walked 11-0, 11-1, … to the first     import-creds.c import_credentials_smbios 252+      ReadEntries stops at the first missing  TestReadEntriesMissingAndBroken
//	  missing one (ENOENT ends the walk)
//	entry shorter than the 5-byte header:         smbios11.c read_smbios11_field (EBADMSG); 252+     ParseEntry error; Import keeps the      TestParseEntry/short,
//	  refused, and the walk ends                  import loop: warning, break                        entries before, reports Stop            TestImport/malformed_second_entry…
//	type byte must be 11                          read_smbios11_field                      252+      ParseEntry error                        TestParseEntry/wrong_type
//	length byte must be exactly 5 (not >= 5)      read_smbios11_field                      252+      ParseEntry error                        TestParseEntry/length_4, …length_6…
//	count byte ignored                            parse_smbios_strings                     252+      ignored                                 TestParseEntry/count_byte_ignored
//	strings: NUL-separated to the end of the      parse_smbios_strings                     252+      splitStrings                            TestParseEntry/empty_strings_skipped…,
//	  data, empty ones skipped, an unterminated                                                                                             …/unterminated_last_string_kept
//	  last one kept
//	read limit: one page (4096 bytes) before 257  read_virtual_file (252–256),             252–256:  Import(raws, EntryReadPage|Full);       TestImport/systemd_<_257…,
//	  (a longer entry is cut there, silently);    read_full_file_full (257+, PR 33539)     4096;     a Cut names the cut string and the      TestImport/entry_of_136,617_bytes…
//	  header + 1 MiB from 257                                                              257+: 1 MiB lost ones
//	dmi_sysfs not loaded: no entries/, systemd    (kernel module)                          252+      ErrNoDMISysfs (source unavailable,      TestReadEntriesMissingAndBroken
//	  imports nothing from SMBIOS                                                                    said so)
//	table length: as announced (2.x: 16 bits;     dmi_scan.c dmi_decode_table              -         ParseTable cuts at the announced size,  TestParseTable/3.0_table_beyond_64_KiB,
//	  3.0: a 32-bit maximum, may exceed 64 KiB)                                                      reads up to MaxRead (4 MiB)             TestParseTableErrors/announced_size…
//	2.x: at most the announced structure count,   dmi_decode_table                         -         same                                    TestParseTable/2.x:_…
//	  end-of-table does not stop the walk
//	3.0: the walk ends after end-of-table         dmi_decode_table                         -         same                                    TestParseTable/3.0:_stops_at_end-of-table…
//	structure length < 4 ends the walk            dmi_decode_table (Linux 6.9, stable      -         same, TableInfo.Stopped                 TestParseTable/structure_shorter…
//	                                              6.1/6.6 backports)
//	strings not ending (double NUL) inside the    dmi_decode_table                         -         not exposed, walk ends                  TestParseTable/strings_running_off…
//	  table: structure not exposed
//	a Type 11 of any length is exposed; systemd   dmi-sysfs.c; read_smbios11_field         252+      table path applies Import too           TestParseTable/Type_11_with_length_6…
//	  then refuses length != 5
//	no end-of-table structure (Linux >= 6.6.39)   dmi_decode_table                         -         decodes                                 TestReadTableWithoutEndOfTable
//	entries/11-N/raw = formatted area + strings   dmi-sysfs.c dmi_entry_raw_read           -         ParseTable yields the same bytes        TestQEMUFixtures
//	  + double NUL, N counting Type 11 in order
//
// The rules that depend on the systemd version are selected by package credential (Systemd).
package smbios
