package chconfig

// The VmConfig subset host-launcher translates, with cloud-hypervisor's JSON field names and
// enum spellings (vmm/src/vm_config.rs, serde derive: enum variants as written, e.g. "Tty",
// "VirtioMem"). Fields cloud-hypervisor leaves out when unset are omitempty here.

// VmConfig is the body of PUT /api/v1/vm.create.
type VmConfig struct {
	Cpus           CpusConfig      `json:"cpus"`
	Memory         MemoryConfig    `json:"memory"`
	Payload        *PayloadConfig  `json:"payload,omitempty"`
	Disks          []DiskConfig    `json:"disks,omitempty"`
	Net            []NetConfig     `json:"net,omitempty"`
	Rng            RngConfig       `json:"rng"`
	Balloon        *BalloonConfig  `json:"balloon,omitempty"`
	Fs             []FsConfig      `json:"fs,omitempty"`
	Serial         SerialConfig    `json:"serial"`
	Console        ConsoleConfig   `json:"console"`
	Devices        []DeviceConfig  `json:"devices,omitempty"`
	Vsock          *VsockConfig    `json:"vsock,omitempty"`
	Pvpanic        bool            `json:"pvpanic"`
	Iommu          bool            `json:"iommu"`
	Watchdog       bool            `json:"watchdog"`
	Platform       *PlatformConfig `json:"platform,omitempty"`
	LandlockEnable bool            `json:"landlock_enable"`
}

// PciCommon is PciDeviceCommonConfig, flattened into each device.
type PciCommon struct {
	ID          *string `json:"id,omitempty"`
	Iommu       bool    `json:"iommu,omitempty"` // skip_serializing_if false
	PciSegment  uint16  `json:"pci_segment"`
	PciDeviceID *uint8  `json:"pci_device_id,omitempty"`
}

// CpuTopology is --cpus topology=T:C:D:P.
type CpuTopology struct {
	ThreadsPerCore uint16 `json:"threads_per_core"`
	CoresPerDie    uint16 `json:"cores_per_die"`
	DiesPerPackage uint16 `json:"dies_per_package"`
	Packages       uint16 `json:"packages"`
}

// CpusConfig is --cpus.
type CpusConfig struct {
	BootVcpus      uint32       `json:"boot_vcpus"`
	MaxVcpus       uint32       `json:"max_vcpus"`
	Topology       *CpuTopology `json:"topology,omitempty"`
	KvmHyperv      bool         `json:"kvm_hyperv"`
	MaxPhysBits    uint8        `json:"max_phys_bits"`
	Nested         bool         `json:"nested"`
	CoreScheduling string       `json:"core_scheduling"` // Vm, Vcpu, Off
}

// MemoryConfig is --memory (without zones).
type MemoryConfig struct {
	Size           uint64  `json:"size"` // bytes
	Mergeable      bool    `json:"mergeable"`
	HotplugMethod  string  `json:"hotplug_method"` // Acpi, VirtioMem
	HotplugSize    *uint64 `json:"hotplug_size,omitempty"`
	HotpluggedSize *uint64 `json:"hotplugged_size,omitempty"`
	Shared         bool    `json:"shared"`
	Hugepages      bool    `json:"hugepages"`
	HugepageSize   *uint64 `json:"hugepage_size,omitempty"`
	Prefault       bool    `json:"prefault"`
	Reserve        bool    `json:"reserve"`
	Thp            bool    `json:"thp"`
}

// PayloadConfig is --kernel/--firmware, --initramfs, --cmdline.
type PayloadConfig struct {
	Firmware  *string `json:"firmware,omitempty"`
	Kernel    *string `json:"kernel,omitempty"`
	Cmdline   *string `json:"cmdline,omitempty"`
	Initramfs *string `json:"initramfs,omitempty"`
}

// DiskConfig is one --disk.
type DiskConfig struct {
	PciCommon
	Path            *string `json:"path,omitempty"`
	Readonly        bool    `json:"readonly"`
	Direct          bool    `json:"direct"`
	NumQueues       uint64  `json:"num_queues"`
	QueueSize       uint16  `json:"queue_size"`
	VhostUser       bool    `json:"vhost_user"`
	VhostSocket     *string `json:"vhost_socket,omitempty"`
	RateLimitGroup  *string `json:"rate_limit_group,omitempty"`
	Serial          *string `json:"serial,omitempty"`
	BackingFiles    bool    `json:"backing_files"`
	Sparse          bool    `json:"sparse"`
	ImageType       string  `json:"image_type"`       // FlatVmdk, FixedVhd, Qcow2, Raw, Vhdx, Unknown
	LockGranularity string  `json:"lock_granularity"` // ByteRange, Full
}

// NetConfig is one --net. FDs are host-launcher's own descriptors (from fd=[…]): vm.create
// cannot carry them, so they go with vm.add-net over SCM_RIGHTS and are left out of
// vm.create's body.
type NetConfig struct {
	PciCommon
	Tap         *string `json:"tap,omitempty"`
	IP          *string `json:"ip,omitempty"`
	Mask        *string `json:"mask,omitempty"`
	Mac         *string `json:"mac,omitempty"`
	HostMac     *string `json:"host_mac,omitempty"`
	Mtu         *uint16 `json:"mtu,omitempty"`
	NumQueues   uint64  `json:"num_queues"`
	QueueSize   uint16  `json:"queue_size"`
	VhostUser   bool    `json:"vhost_user"`
	VhostSocket *string `json:"vhost_socket,omitempty"`
	VhostMode   string  `json:"vhost_mode"` // Client, Server
	FDs         []int   `json:"fds,omitempty"`
	OffloadTso  bool    `json:"offload_tso"`
	OffloadUfo  bool    `json:"offload_ufo"`
	OffloadCsum bool    `json:"offload_csum"`
}

// RngConfig is --rng.
type RngConfig struct {
	PciCommon
	Src string `json:"src"`
}

// BalloonConfig is --balloon.
type BalloonConfig struct {
	PciCommon
	Size              uint64 `json:"size"` // bytes
	DeflateOnOOM      bool   `json:"deflate_on_oom"`
	FreePageReporting bool   `json:"free_page_reporting"`
}

// FsConfig is one --fs (virtio-fs).
type FsConfig struct {
	PciCommon
	Tag       string `json:"tag"`
	Socket    string `json:"socket"`
	NumQueues uint64 `json:"num_queues"`
	QueueSize uint16 `json:"queue_size"`
}

// ConsoleCommon is CommonConsoleConfig.
type ConsoleCommon struct {
	File   *string `json:"file,omitempty"`
	Mode   string  `json:"mode"` // Off, Pty, Tty, File, Socket, Null
	Socket *string `json:"socket,omitempty"`
}

// SerialConfig is --serial.
type SerialConfig struct {
	ConsoleCommon
}

// ConsoleConfig is --console (virtio-console).
type ConsoleConfig struct {
	ConsoleCommon
	PciCommon
}

// DeviceConfig is one --device (VFIO passthrough by path).
type DeviceConfig struct {
	PciCommon
	Path *string `json:"path,omitempty"`
}

// VsockConfig is --vsock.
type VsockConfig struct {
	PciCommon
	Cid    uint32 `json:"cid"`
	Socket string `json:"socket"`
}

// PlatformConfig is --platform.
type PlatformConfig struct {
	NumPciSegments        uint16   `json:"num_pci_segments"`
	IommuSegments         []uint16 `json:"iommu_segments,omitempty"`
	IommuAddressWidthBits uint8    `json:"iommu_address_width_bits"`
	SystemSerialNumber    *string  `json:"system_serial_number,omitempty"`
	SystemUUID            *string  `json:"system_uuid,omitempty"`
	OemStrings            []string `json:"oem_strings,omitempty"`
	SystemManufacturer    *string  `json:"system_manufacturer,omitempty"`
	SystemProductName     *string  `json:"system_product_name,omitempty"`
	SystemVersion         *string  `json:"system_version,omitempty"`
	SystemFamily          *string  `json:"system_family,omitempty"`
	SystemSkuNumber       *string  `json:"system_sku_number,omitempty"`
	ChassisAssetTag       *string  `json:"chassis_asset_tag,omitempty"`
	Iommufd               bool     `json:"iommufd"`
	VfioP2PDma            bool     `json:"vfio_p2p_dma"`
}
