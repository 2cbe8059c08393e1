package credential

// Source names: where a credential was read from. They appear in Credential.Source, in
// guest-agent's --source, in the acknowledgement report ("source") and in the source label of
// credlink_credential_info.
const (
	SourceSMBIOS      = "smbios"      // SMBIOS Type 11 OEM strings (ParseOEMStrings, sources.SMBIOS)
	SourceFwCfg       = "fwcfg"       // QEMU fw_cfg opt/io.systemd.credentials/ (sources.FwCfg)
	SourceCredentials = "credentials" // a systemd credentials directory (sources.Dir)
	SourceHost        = "host"        // the host's own files, in host-launcher's manifest check
)
