package chconfig

import "fmt"

// cloud-hypervisor's serde structs do not deny unknown fields: a misspelt field of a VmConfig
// (--vm-config, or a fake's input) is silently dropped by the real VMM. host-launcher refuses
// them before anything starts, against the OpenAPI schemas below.

// schemas is the property names of the OpenAPI schemas (vmm/src/api/openapi/cloud-hypervisor.yaml
// at ae44c297) host-launcher sends; a value names the schema of a nested object or array element.
var schemas = map[string]map[string]string{
	"VmConfig": {"cpus": "CpusConfig", "memory": "MemoryConfig", "payload": "PayloadConfig", "rate_limit_groups": "", "disks": "DiskConfig",
		"net": "NetConfig", "rng": "RngConfig", "balloon": "BalloonConfig", "fs": "FsConfig", "generic_vhost_user": "", "pmem": "",
		"serial": "SerialConfig", "console": "ConsoleConfig", "debug_console": "", "devices": "DeviceConfig", "user_devices": "", "vdpa": "",
		"vsock": "VsockConfig", "numa": "", "iommu": "", "watchdog": "", "rtc": "", "pvpanic": "", "pci_segments": "", "platform": "PlatformConfig",
		"tpm": "", "landlock_enable": "", "landlock_rules": ""},
	"PayloadConfig": {"firmware": "", "kernel": "", "cmdline": "", "initramfs": "", "igvm": "", "host_data": ""},
	"CpusConfig":    {"boot_vcpus": "", "max_vcpus": "", "topology": "CpuTopology", "kvm_hyperv": "", "max_phys_bits": "", "nested": "", "affinity": "", "features": "", "core_scheduling": ""},
	"CpuTopology":   {"threads_per_core": "", "cores_per_die": "", "dies_per_package": "", "packages": ""},
	"PlatformConfig": {"num_pci_segments": "", "iommu_segments": "", "iommu_address_width_bits": "", "system_serial_number": "", "serial_number": "",
		"system_uuid": "", "uuid": "", "oem_strings": "", "system_manufacturer": "", "system_product_name": "", "system_version": "", "system_family": "",
		"system_sku_number": "", "chassis_asset_tag": "", "tdx": "", "sev_snp": "", "iommufd": "", "vfio_p2p_dma": ""},
	"MemoryConfig": {"size": "", "hotplug_size": "", "hotplugged_size": "", "mergeable": "", "hotplug_method": "", "shared": "", "hugepages": "",
		"hugepage_size": "", "prefault": "", "reserve": "", "thp": "", "zones": ""},
	"DiskConfig": {"path": "", "readonly": "", "direct": "", "iommu": "", "num_queues": "", "queue_size": "", "vhost_user": "", "vhost_socket": "",
		"rate_limiter_config": "", "pci_segment": "", "pci_device_id": "", "id": "", "serial": "", "rate_limit_group": "", "queue_affinity": "",
		"backing_files": "", "sparse": "", "image_type": "", "lock_granularity": ""},
	"NetConfig": {"tap": "", "ip": "", "mask": "", "mac": "", "host_mac": "", "mtu": "", "iommu": "", "num_queues": "", "queue_size": "", "vhost_user": "",
		"vhost_socket": "", "vhost_mode": "", "id": "", "pci_segment": "", "pci_device_id": "", "rate_limiter_config": "", "offload_tso": "",
		"offload_ufo": "", "offload_csum": ""},
	"RngConfig":     {"id": "", "pci_segment": "", "pci_device_id": "", "iommu": "", "src": ""},
	"BalloonConfig": {"id": "", "pci_segment": "", "pci_device_id": "", "iommu": "", "size": "", "deflate_on_oom": "", "free_page_reporting": ""},
	"FsConfig":      {"tag": "", "socket": "", "num_queues": "", "queue_size": "", "pci_segment": "", "pci_device_id": "", "id": ""},
	"ConsoleConfig": {"file": "", "socket": "", "mode": "", "iommu": "", "id": "", "pci_segment": "", "pci_device_id": ""},
	"SerialConfig":  {"file": "", "socket": "", "mode": ""},
	"DeviceConfig":  {"path": "", "iommu": "", "pci_segment": "", "pci_device_id": "", "id": "", "x_nv_gpudirect_clique": "", "x_exclude_mmap_bars": ""},
	"VsockConfig":   {"cid": "", "socket": "", "iommu": "", "pci_segment": "", "pci_device_id": "", "id": ""},
}

// CheckSchema reports the first field of v (JSON decoded into map[string]any and []any) that
// the OpenAPI schema named schema ("VmConfig", "NetConfig", …) does not name, as a JSON path:
// "VmConfig.payload.kernal: not a field of PayloadConfig". Fields whose own schema is not
// listed are not looked into. It also checks ConsoleConfig's and SerialConfig's mode enum.
func CheckSchema(schema string, v any) error {
	if _, ok := schemas[schema]; !ok {
		return fmt.Errorf("no schema %q", schema)
	}
	return checkSchema(schema, schema, v)
}

func checkSchema(schema, path string, v any) error {
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: want an object (%s)", path, schema)
	}
	for k, sub := range obj {
		inner, known := schemas[schema][k]
		if !known {
			return fmt.Errorf("%s.%s: not a field of %s", path, k, schema)
		}
		if inner == "" {
			continue
		}
		if list, isList := sub.([]any); isList {
			for i, e := range list {
				if err := checkSchema(inner, fmt.Sprintf("%s.%s[%d]", path, k, i), e); err != nil {
					return err
				}
			}
		} else if err := checkSchema(inner, path+"."+k, sub); err != nil {
			return err
		}
	}
	if m, ok := obj["mode"].(string); ok && (schema == "ConsoleConfig" || schema == "SerialConfig") {
		switch m {
		case "Off", "Pty", "Tty", "File", "Socket", "Null":
		default:
			return fmt.Errorf("%s.mode: %q is not a ConsoleMode", path, m)
		}
	}
	return nil
}
